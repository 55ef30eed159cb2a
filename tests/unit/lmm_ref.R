# lmm_ref.R — the independent reference for plugin/core/lmm.c, run by the
# unit tests at run time (tests/unit/rref.c): R's lme4 (lmer, REML) with
# lmerTest's Satterthwaite degrees of freedom (Debian r-cran-lme4,
# r-cran-lmertest; conf/install-deps.sh installs them).
#
#   Rscript lmm_ref.R data.csv
# data.csv: columns y, g (the client), then x1 … (the fixed effects besides
# the intercept). Prints one line per fixed coefficient
#   coef <j> <estimate> <se> <df> <lo95> <hi95>
# and "var <sigma2_b> <sigma2> <REMLcrit> <singular>".
#
# With a column t (the therapist), the model is (1 | t/g), clients nested
# in therapists, and the var line is
#   "var2 <sigma2_therapist> <sigma2_client> <sigma2> <REMLcrit> <singular>";
# a second argument "w0,w1,…" (the contrast L) adds lmerTest's contest()
#   "contrast <estimate> <se> <df> <lo95> <hi95>".
suppressPackageStartupMessages({ library(lme4); library(lmerTest) })
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
d$g <- factor(d$g)
nested <- "t" %in% names(d)
if (nested) d$t <- factor(d$t)
xs <- setdiff(names(d), c("y", "g", "t"))
f <- as.formula(paste("y ~", if (length(xs)) paste(xs, collapse = " + ") else "1",
                      if (nested) "+ (1 | t/g)" else "+ (1 | g)"))
# tight tolerances so the reference's own optimiser error stays far below 1e-4
ctl <- lmerControl(optimizer = "nloptwrap",
                   optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12, maxeval = 1e5),
                   check.conv.singular = "ignore")
m <- lmerTest::lmer(f, data = d, REML = TRUE, control = ctl)
cf <- summary(m, ddf = "Satterthwaite")$coefficients
for (j in seq_len(nrow(cf))) {
  est <- cf[j, "Estimate"]; se <- cf[j, "Std. Error"]; df <- cf[j, "df"]
  q <- qt(0.975, df)
  cat(sprintf("coef %d %.15g %.15g %.15g %.15g %.15g\n", j - 1, est, se, df, est - q * se, est + q * se))
}
vc <- as.data.frame(VarCorr(m))
if (nested) {
  cat(sprintf("var2 %.15g %.15g %.15g %.15g %d\n", vc$vcov[vc$grp == "t"], vc$vcov[vc$grp == "g:t"],
              sigma(m)^2, REMLcrit(m), as.integer(isSingular(m))))
} else {
  cat(sprintf("var %.15g %.15g %.15g %d\n", vc$vcov[vc$grp == "g"], sigma(m)^2, REMLcrit(m),
              as.integer(isSingular(m))))
}
if (length(args) >= 2) {
  L <- as.numeric(strsplit(args[2], ",")[[1]])
  ct <- contest(m, L = matrix(L, nrow = 1), joint = FALSE, ddf = "Satterthwaite")
  est <- ct[1, "Estimate"]; se <- ct[1, "Std. Error"]; df <- ct[1, "df"]
  q <- qt(0.975, df)
  cat(sprintf("contrast %.15g %.15g %.15g %.15g %.15g\n", est, se, df, est - q * se, est + q * se))
}

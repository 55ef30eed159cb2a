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
suppressPackageStartupMessages({ library(lme4); library(lmerTest) })
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
d$g <- factor(d$g)
xs <- setdiff(names(d), c("y", "g"))
f <- as.formula(paste("y ~", if (length(xs)) paste(xs, collapse = " + ") else "1", "+ (1 | g)"))
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
cat(sprintf("var %.15g %.15g %.15g %d\n", vc$vcov[vc$grp == "g"], sigma(m)^2, REMLcrit(m),
            as.integer(isSingular(m))))

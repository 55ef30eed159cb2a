# The libFuzzer targets and their input limit, shared by tests/fuzz/run.sh
# (CI's short run) and tests/fuzz/campaign.sh (the long campaign). Sourced,
# not run. Each name T has tests/fuzz/fuzz_T.c, a `make fuzz` binary
# tests/fuzz/fuzz_T in the build tree and seeds in tests/fuzz/corpus/T/.
FUZZ_TARGETS="dcmsg proto instrument meter token"
FUZZ_MAX_LEN=20000

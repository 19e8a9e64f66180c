# Reference values for mt_evidence's network over time (src/mt_evidence/stats/network_time.py), from metafor.
#
# Run from the repository root:   Rscript tests/reference/make_network_time_reference.R
# (after `python tests/reference/export_network_time_input.py`; `make reference` runs both).
# Needs R with metafor, metadat and jsonlite. Writes tests/reference/network_time_reference.json, read by
# tests/test_network_time.py (CI never needs R).
#
# The model: differences at each time with time-specific effects (mods = X, no intercept), sampling covariance V
# with the same difference of a trial at two times correlated by rho_within, and two random effects with
# compound symmetry (correlation 1/2) between a trial's differences: one shared by the trial over time, one per
# trial and time:
#   rma.mv(yi, V, mods = X, random = list(~ comp | study, ~ comp | st), struct = c("CS", "CS"), rho = 1/2, phi = 1/2)
# (with a single comparison the structure is ~ 1 | study plus ~ 1 | st).
#
# Cases:
#  1. metadat's dat.ishak2007 (deep-brain stimulation, mean change in UPDRS at 3, 6, 12 and 24 months): one
#     difference per study and time; V built here with rho_within = 0, 0.5 and 0.9.
#  2. the bundled disability network over all windows (real trials; stacked y, V and X exported by the package,
#     so this case checks the estimator on a network with several treatments and multi-arm trials).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
ctrl <- list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-14, maxit = 10000)

cases <- list()

data(dat.ishak2007, package = "metadat")
long <- reshape(dat.ishak2007, direction = "long", idvar = "study", v.names = c("yi", "vi"),
                varying = list(c("y1i", "y2i", "y3i", "y4i"), c("v1i", "v2i", "v3i", "v4i")))
long <- long[!is.na(long$yi), ]
long$time <- c(3, 6, 12, 24)[long$time]
long <- long[order(long$study, long$time), ]
long$st <- paste(long$study, long$time)
long$comp <- "dbs-pre"
for (rho in c(0, 0.5, 0.9)) {
  V <- matrix(0, nrow(long), nrow(long))
  for (i in seq_len(nrow(long))) for (j in seq_len(nrow(long))) {
    if (long$study[i] == long$study[j]) {
      V[i, j] <- if (i == j) long$vi[i] else rho * sqrt(long$vi[i] * long$vi[j])
    }
  }
  res <- rma.mv(yi, V, mods = ~ factor(time) - 1, random = list(~ 1 | study, ~ 1 | st), data = long,
                method = "REML", control = ctrl)
  cases[[length(cases) + 1]] <- list(
    name = paste0("ishak2007_rho", rho), rho_within = rho,
    data = list(study = long$study, time = long$time, yi = long$yi, vi = long$vi),
    b = as.numeric(coef(res)), se = as.numeric(res$se), tau2_study = res$sigma2[1], tau2_time = res$sigma2[2],
    ll = as.numeric(logLik(res)))
}

inp <- fromJSON("tests/reference/network_time_input.json")
V <- as.matrix(inp$V)
X <- as.matrix(inp$X)
d <- data.frame(y = inp$y, study = inp$study, st = paste(inp$study, inp$time), comp = inp$comp)
res <- rma.mv(y, V, mods = X, intercept = FALSE, random = list(~ comp | study, ~ comp | st),
              struct = c("CS", "CS"), rho = 0.5, phi = 0.5, data = d, method = "REML", control = ctrl)
cases[[length(cases) + 1]] <- list(
  name = "bundled_disability_network", source = inp$source, columns = inp$columns,
  b = as.numeric(coef(res)), se = as.numeric(res$se), tau2_study = res$tau2, tau2_time = res$gamma2,
  ll = as.numeric(logLik(res)))

out <- list(
  generated_by = "tests/reference/make_network_time_reference.R",
  versions = list(R = R.version.string, metafor = as.character(packageVersion("metafor")),
                  metadat = as.character(packageVersion("metadat")), jsonlite = as.character(packageVersion("jsonlite"))),
  control = ctrl,
  cases = cases)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/reference/network_time_reference.json")
cat("wrote tests/reference/network_time_reference.json\n")

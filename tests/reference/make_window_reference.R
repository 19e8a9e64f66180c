# Reference values for the window-specific heterogeneity model (mt_evidence.stats.multilevel.fit_window_heterogeneity):
# metafor rma.mv with a between-trial variance per follow-up window (struct = "DIAG") and t-based inference.
# Run from the project root: Rscript tests/reference/make_window_reference.R
suppressPackageStartupMessages({library(metafor); library(jsonlite)})
ref <- fromJSON("tests/reference/metafor_reference.json", simplifyVector = TRUE)
num <- function(x) unname(as.numeric(x))
make_V <- function(vi, trial, r) {
  V <- diag(vi)
  for (t in unique(trial)) {
    idx <- which(trial == t)
    if (length(idx) == 2) V[idx[1], idx[2]] <- V[idx[2], idx[1]] <- r * sqrt(vi[idx[1]] * vi[idx[2]])
  }
  V
}
fit_case <- function(yi, vi, trial, long, r) {
  V <- make_V(vi, trial, r)
  fit <- rma.mv(yi, V, mods = ~ long, random = ~ factor(long) | trial, struct = "DIAG", method = "REML",
                test = "t", control = list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-14, maxit = 10000))
  list(correlation = r, b = num(fit$b), se = num(fit$se), ci_low = num(fit$ci.lb), ci_high = num(fit$ci.ub),
       pval = num(fit$pval), tau2 = num(fit$tau2), loglik = num(logLik(fit)), dfs = num(fit$ddf))
}
datasets <- list()
ml <- ref$multilevel
datasets[[1]] <- list(name = "multilevel grid (metafor_reference.json)", trial = ml$trial, long = ml$long,
                      yi = ml$yi, vi = ml$vi)
set.seed(20261130)
trial <- c(1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 6, 7, 8, 8, 9, 10, 10)
long <- c(0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1)
vi <- round(runif(length(trial), 3, 20), 3)
yi <- round(-10 + 7 * long + ifelse(long == 1, rnorm(length(trial), 0, 5), rnorm(length(trial), 0, 1.5)) +
            rnorm(length(trial), 0, sqrt(vi)), 3)
datasets[[2]] <- list(name = "synthetic: more heterogeneity at long term", trial = trial, long = long, yi = yi,
                      vi = vi)
for (i in seq_along(datasets)) {
  d <- datasets[[i]]
  datasets[[i]]$cases <- lapply(c(0, 0.5, 0.9), function(r) fit_case(d$yi, d$vi, d$trial, d$long, r))
}
out <- list(meta = list(R_version = R.version.string, metafor_version = as.character(packageVersion("metafor")),
                        call = paste("rma.mv(yi, V, mods = ~ long, random = ~ factor(long) | trial,",
                                     "struct = 'DIAG', method = 'REML', test = 't')")),
            datasets = datasets)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/window_model_reference.json")

# Reference values for RevMan 5's 2x2 conventions (pool_binary(preset = "revman5")) and a given tau^2
# (pool(tau2 = )), produced by metafor.
#
# Run from the repository root:   Rscript tests/reference/make_revman5_reference.R
# Needs R with metafor, metadat and jsonlite. Writes tests/reference/revman5_reference.json, read by
# tests/test_revman_review.py (CI never needs R). Data sets marked "synthetic" are made here; they are not trials.
#
# RevMan 5's Mantel-Haenszel odds and risk ratios use the zero-cell-corrected tables (R meta's MH.exact = FALSE):
# metafor's rma.mh does the same with add = c(1/2, 1/2), to = c("only0", "only0"), drop00 = c(TRUE, TRUE).
# Its random effects use DerSimonian-Laird's tau^2 computed from the Q of that analysis (R meta's Q.Cochrane):
# computed here from rma.mh's QE and escalc's weights, then passed to rma(tau2 = ). RevMan's Mantel-Haenszel risk
# difference (Greenland-Robins variance with corrected cells in its numerator) has no metafor counterpart; it is
# checked by formula in the tests and against RevMan's stored results (tests/reference/README.md).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
num <- function(x) { x <- as.numeric(x); x[is.infinite(x)] <- NA; x }

tables <- list()
add_tab <- function(id, ai, n1i, ci, n2i, source, synthetic = FALSE) {
  tables[[id]] <<- list(id = id, ai = ai, n1i = n1i, ci = ci, n2i = n2i, source = source, synthetic = synthetic)
}
d <- dat.nielweise2007
add_tab("nielweise2007", d$ai, d$n1i, d$ci, d$n2i, "metadat dat.nielweise2007 (sparse events)")
b <- dat.bcg
add_tab("bcg", b$tpos, b$tpos + b$tneg, b$cpos, b$cpos + b$cneg, "metadat dat.bcg")
add_tab("zero_cells", c(0, 2, 0, 5, 1, 0), c(20, 30, 15, 40, 50, 12), c(3, 0, 0, 6, 1, 0), c(22, 28, 15, 41, 48, 12),
        "synthetic: zero cells and double-zero tables", synthetic = TRUE)
add_tab("all_events", c(10, 4, 7), c(10, 30, 25), c(12, 9, 3), c(12, 31, 24),
        "synthetic: a table with only events in both groups", synthetic = TRUE)

dl_from_q <- function(QE, vi) {
  w <- 1 / vi
  k <- length(vi)
  if (k < 2) return(0)
  max(0, (QE - (k - 1)) / (sum(w) - sum(w^2) / sum(w)))
}

cases <- list()
for (t in tables) {
  for (m in c("OR", "RR")) {
    r <- rma.mh(measure = m, ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i, add = c(1/2, 1/2),
                to = c("only0", "only0"), drop00 = c(TRUE, TRUE))
    e <- escalc(m, ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i, drop00 = TRUE)
    e <- e[!is.na(e$yi), ]
    tau2 <- dl_from_q(r$QE, e$vi)
    rr <- rma(e$yi, e$vi, tau2 = tau2, method = "DL")
    cases[[length(cases) + 1]] <- list(table = t$id, measure = m, method = "MH",
      estimate = num(r$beta), se = num(r$se), ci_low = num(r$ci.lb), ci_high = num(r$ci.ub), q = num(r$QE),
      i2 = num(r$I2), k_yi = r$k.yi, tau2 = num(tau2), random_estimate = num(rr$beta), random_se = num(rr$se),
      random_ci_low = num(rr$ci.lb), random_ci_high = num(rr$ci.ub))
  }
  r <- rma.peto(ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i)
  e <- escalc("PETO", ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i, drop00 = TRUE)
  e <- e[!is.na(e$yi), ]
  tau2 <- dl_from_q(r$QE, e$vi)
  rr <- rma(e$yi, e$vi, tau2 = tau2, method = "DL")
  cases[[length(cases) + 1]] <- list(table = t$id, measure = "OR", method = "PETO",
    estimate = num(r$beta), se = num(r$se), ci_low = num(r$ci.lb), ci_high = num(r$ci.ub), q = num(r$QE),
    i2 = num(r$I2), k_yi = r$k.yi, tau2 = num(tau2), random_estimate = num(rr$beta), random_se = num(rr$se),
    random_ci_low = num(rr$ci.lb), random_ci_high = num(rr$ci.ub))
}

# a given tau^2: rma(yi, vi, tau2 = , method = , test = )
given <- list()
sets <- list(
  list(id = "bcg_logrr", e = escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)),
  list(id = "synthetic_md", e = data.frame(yi = c(0.1, 0.3, -0.2, 0.05), vi = c(0.01, 0.02, 0.03, 0.015)))
)
for (s in sets) for (t2 in c(0, 0.05, 0.4)) for (m in c("DL", "REML")) for (tt in c("z", "knha")) {
  r <- rma(s$e$yi, s$e$vi, tau2 = t2, method = m, test = tt)
  p <- predict(r)
  given[[length(given) + 1]] <- list(data = s$id, yi = num(s$e$yi), vi = num(s$e$vi), tau2 = t2, method = m,
    test = tt, estimate = num(r$beta), se = num(r$se), ci_low = num(r$ci.lb), ci_high = num(r$ci.ub),
    pi_low = num(p$pi.lb), pi_high = num(p$pi.ub), i2 = num(r$I2), h2 = num(r$H2), q = num(r$QE),
    tau2_se = num(r$se.tau2))
}

out <- list(
  versions = list(R = R.version.string, metafor = as.character(packageVersion("metafor")),
                  metadat = as.character(packageVersion("metadat")), jsonlite = as.character(packageVersion("jsonlite"))),
  calls = list(mh = "rma.mh(measure, ai, n1i, ci, n2i, add = c(1/2, 1/2), to = c('only0', 'only0'), drop00 = c(TRUE, TRUE))",
               peto = "rma.peto(ai, n1i, ci, n2i)",
               random = "tau2 = max(0, (QE - (k - 1)) / (sum(w) - sum(w^2) / sum(w))), w = 1 / vi of escalc(measure | 'PETO', drop00 = TRUE); rma(yi, vi, tau2 = tau2, method = 'DL')",
               given = "rma(yi, vi, tau2, method, test); predict()"),
  tables = unname(tables), cases = cases, given = given
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = FALSE), "tests/reference/revman5_reference.json")
cat("wrote", length(cases), "RevMan 5 2x2 cases and", length(given), "given-tau2 cases\n")

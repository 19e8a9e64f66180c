# Reference values for mt_evidence's binary pooling (adverse events), produced by metafor.
#
# Run from the repository root:   Rscript tests/reference/make_binary_reference.R
# Needs R with metafor, metadat and jsonlite (Debian: r-base-core r-cran-metafor r-cran-metadat r-cran-jsonlite).
# Writes tests/reference/binary_reference.json, read by tests/test_binary.py (CI never needs R).
# Data sets marked "synthetic" are made here to exercise zero cells; they are not trials.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
num <- function(x) { x <- as.numeric(x); x[is.infinite(x)] <- NA; x }

tables <- list()
add_tab <- function(id, ai, n1i, ci, n2i, source, synthetic = FALSE) {
  tables[[id]] <<- list(id = id, ai = ai, n1i = n1i, ci = ci, n2i = n2i, source = source, synthetic = synthetic)
}
d <- dat.nielweise2007
add_tab("nielweise2007", d$ai, d$n1i, d$ci, d$n2i, "metadat dat.nielweise2007 (sparse events)")
b <- dat.bcg
add_tab("bcg", b$tpos, b$tpos + b$tneg, b$cpos, b$cpos + b$cneg, "metadat dat.bcg")
y <- dat.yusuf1985[dat.yusuf1985$table == "6", ]
y <- y[complete.cases(y[, c("ai", "n1i", "ci", "n2i")]), ]
add_tab("yusuf1985_t6", y$ai, y$n1i, y$ci, y$n2i, "metadat dat.yusuf1985, table 6 (rows with counts)")
add_tab("zero_cells", c(0, 2, 0, 5, 1, 0), c(20, 30, 15, 40, 50, 12), c(3, 0, 0, 6, 1, 0), c(22, 28, 15, 41, 48, 12),
        "synthetic: zero cells and double-zero tables", synthetic = TRUE)
add_tab("k2", c(4, 9), c(60, 80), c(1, 3), c(58, 82), "synthetic: two trials, few events", synthetic = TRUE)

cases <- list()
for (t in tables) {
  for (m in c("OR", "RR", "RD")) {
    r <- rma.mh(measure = m, ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i)
    cases[[length(cases) + 1]] <- list(table = t$id, measure = m, method = "MH",
      estimate = num(r$beta), se = num(r$se), z = num(r$zval), p = num(r$pval), ci_low = num(r$ci.lb),
      ci_high = num(r$ci.ub), q = num(r$QE), q_p = num(r$QEp), i2 = num(r$I2), k = r$k, k_yi = r$k.yi,
      cmh = num(r$MH), cmh_p = num(r$MHp), tarone = num(r$TA), tarone_p = num(r$TAp),
      breslow_day = num(r$BD), breslow_day_p = num(r$BDp))
  }
  r <- rma.peto(ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i)
  cases[[length(cases) + 1]] <- list(table = t$id, measure = "OR", method = "PETO",
    estimate = num(r$beta), se = num(r$se), z = num(r$zval), p = num(r$pval), ci_low = num(r$ci.lb),
    ci_high = num(r$ci.ub), q = num(r$QE), q_p = num(r$QEp), i2 = num(r$I2), k = r$k, k_yi = r$k.yi)
  for (m in c("OR", "RR", "RD", "PETO")) {
    e <- escalc(m, ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i, drop00 = TRUE)
    r <- rma(e$yi, e$vi, method = "FE")
    meth <- if (m == "PETO") "PETO" else "IV"
    mm <- if (m == "PETO") "OR" else m
    if (m != "PETO") {
      cases[[length(cases) + 1]] <- list(table = t$id, measure = mm, method = "IV",
        estimate = num(r$beta), se = num(r$se), z = num(r$zval), p = num(r$pval), ci_low = num(r$ci.lb),
        ci_high = num(r$ci.ub), q = num(r$QE), q_p = num(r$QEp), i2 = num(r$I2), k = length(t$ai), k_yi = r$k)
    }
    for (tm in c("REML", "DL")) for (tt in c("z", "knha")) {
      rr <- tryCatch(rma(e$yi, e$vi, method = tm, test = tt, control = ctrl), error = function(err) NULL)
      if (is.null(rr)) next
      cases[[length(cases) + 1]] <- list(table = t$id, measure = mm, method = meth, random = TRUE,
        tau2_method = tm, test = tt, estimate = num(rr$beta), se = num(rr$se), ci_low = num(rr$ci.lb),
        ci_high = num(rr$ci.ub), tau2 = num(rr$tau2), k_yi = rr$k)
    }
  }
  for (m in c("OR", "RR", "RD", "PETO")) {
    e <- escalc(m, ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i)
    cases[[length(cases) + 1]] <- list(table = t$id, escalc = m, yi = num(e$yi), vi = num(e$vi))
  }
}

props <- list(
  list(id = "pritz1997", xi = dat.pritz1997$xi, ni = dat.pritz1997$ni, source = "metadat dat.pritz1997", synthetic = FALSE),
  list(id = "rare_events", xi = c(0, 1, 0, 3, 2), ni = c(25, 40, 18, 60, 33),
       source = "synthetic: rare events with zero counts", synthetic = TRUE)
)
prop_cases <- list()
for (p in props) {
  for (m in c("PLO", "PFT")) {
    e <- escalc(m, xi = p$xi, ni = p$ni)
    for (tm in c("REML", "DL", "FE")) for (tt in c("z", "knha")) {
      r <- rma(e$yi, e$vi, method = tm, test = tt, control = ctrl)
      tr <- if (m == "PLO") predict(r, transf = transf.ilogit) else predict(r, transf = transf.ipft.hm, targs = list(ni = p$ni))
      pr <- predict(r)
      prop_cases[[length(prop_cases) + 1]] <- list(data = p$id, measure = m, method = tm, test = tt,
        yi = num(e$yi), vi = num(e$vi), estimate = num(r$beta), se = num(r$se), ci_low = num(r$ci.lb),
        ci_high = num(r$ci.ub), pi_low = num(pr$pi.lb), pi_high = num(pr$pi.ub), tau2 = num(r$tau2),
        proportion = num(tr$pred), prop_ci_low = num(tr$ci.lb), prop_ci_high = num(tr$ci.ub),
        prop_pi_low = num(tr$pi.lb), prop_pi_high = num(tr$pi.ub))
    }
  }
}

out <- list(
  versions = list(R = R.version.string, metafor = as.character(packageVersion("metafor")),
                  metadat = as.character(packageVersion("metadat")), jsonlite = as.character(packageVersion("jsonlite"))),
  calls = list(mh = "rma.mh(measure, ai, n1i, ci, n2i) (defaults: add = c(1/2, 0), to = c('only0', 'none'), drop00 = c(TRUE, FALSE), correct = TRUE)",
               peto = "rma.peto(ai, n1i, ci, n2i) (same defaults)",
               iv = "rma(yi, vi, method) on escalc(measure, ..., drop00 = TRUE)",
               proportions = "rma(yi, vi, method, test) on escalc('PLO' | 'PFT', xi, ni); predict(transf = transf.ilogit | transf.ipft.hm, targs = list(ni))"),
  control = ctrl,
  tables = unname(tables), cases = cases,
  proportions = props, proportion_cases = prop_cases
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = FALSE), "tests/reference/binary_reference.json")
cat("wrote", length(cases), "binary cases and", length(prop_cases), "proportion cases\n")

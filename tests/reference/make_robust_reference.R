# Reference values for mt_evidence's robustness checks (src/mt_evidence/stats/robust.py, selection.py,
# permutation.py, gosh.py), from metafor.
#
# Run from the repository root:   Rscript tests/reference/make_robust_reference.R
# Needs R with metafor, metadat and jsonlite (about two minutes: the exact permutation tests and the GOSH
# grids refit the model tens of thousands of times). Writes tests/reference/robust_reference.json, read by
# tests/test_robust.py (CI never needs R).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
# selmodel() maximises with optim(BFGS) on a finite-difference gradient (optim's ndeps = 1e-3): with its defaults
# the estimates stop up to about 1e-4 (relative) short of the optimum, and even with reltol = 1e-15 the crude
# gradient leaves them up to 4e-4 away (molloy2014, three intervals). The reference uses reltol = 1e-15 and
# ndeps = 1e-6 (the log-likelihood then agrees with mt_evidence's analytic-gradient optimum to 1e-12), and records
# what the default control gives (sel_default). optim's parameters are the p coefficients, tau^2 and every delta.
selctrl <- function(steps, p = 1) list(reltol = 1e-15, maxit = 100000, ndeps = rep(1e-6, 1 + p + length(steps)))
set.seed(20261201)

sets <- list()
b <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
sets$bcg <- list(yi = as.numeric(b$yi), vi = as.numeric(b$vi), year = b$year, ablat = b$ablat,
                 alloc = as.character(b$alloc), source = "metadat dat.bcg, log risk ratios")
h <- dat.hackshaw1998
sets$hackshaw1998 <- list(yi = h$yi, vi = h$vi, year = h$year, source = "metadat dat.hackshaw1998, log odds ratios")
n <- escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
            data = dat.normand1999)
sets$normand1999 <- list(yi = as.numeric(n$yi), vi = as.numeric(n$vi), year = NULL,
                         source = "metadat dat.normand1999, mean differences")
m <- escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.molloy2014)
sets$molloy2014 <- list(yi = as.numeric(m$yi), vi = as.numeric(m$vi), year = m$year,
                        source = "metadat dat.molloy2014, Fisher z")
bk <- dat.baskerville2012
sets$baskerville2012 <- list(yi = bk$smd, vi = bk$se^2, year = bk$year,
                             source = "metadat dat.baskerville2012, standardised mean differences")
mc <- escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.mcdaniel1994)
sets$mcdaniel1994 <- list(yi = as.numeric(mc$yi), vi = as.numeric(mc$vi), year = NULL,
                          source = "metadat dat.mcdaniel1994, Fisher z (k = 160; PET's intercept is significant)")

lmfit <- function(yi, x, vi, level = 0.95) {
  fit <- lm(yi ~ x, weights = 1 / vi)
  s <- summary(fit)$coefficients
  ci <- confint(fit, level = level)
  list(estimate = unname(s[, 1]), se = unname(s[, 2]), tval = unname(s[, 3]), pval = unname(s[, 4]),
       ci_low = unname(ci[, 1]), ci_high = unname(ci[, 2]), df = fit$df.residual)
}

out <- list()
for (id in names(sets)) {
  s <- sets[[id]]
  yi <- s$yi
  vi <- s$vi
  sei <- sqrt(vi)
  case <- list(id = id, source = s$source, yi = yi, vi = vi, year = s$year, ablat = s$ablat, alloc = s$alloc)
  # PET and PEESE (Stanley & Doucouliagos 2014): weighted least squares, weights 1/vi, multiplicative error
  case$pet <- lmfit(yi, sei, vi)
  case$peese <- lmfit(yi, vi, vi)
  chk <- suppressWarnings(rma(yi, vi, mods = ~ sei, method = "FE", test = "knha"))
  stopifnot(abs(chk$se[1] - case$pet$se[1]) < 1e-10 * case$pet$se[1])

  for (meth in c("REML", "DL", "FE")) {
    for (tst in c("z", "knha")) {
      fit <- suppressWarnings(rma(yi, vi, method = meth, test = tst, control = ctrl))
      if (!is.null(s$year)) {
        cu <- cumul(fit, order = s$year)
        case[[paste0("cumul_", meth, "_", tst)]] <- list(
          estimate = cu$estimate, se = cu$se, stat = if (tst == "z") cu$zval else cu$tval, pval = cu$pvals,
          ci_low = cu$ci.lb, ci_high = cu$ci.ub, q = cu$Q, q_p = cu$Qp,
          tau2 = if (meth == "FE") NULL else cu$tau2, i2 = cu$I2, h2 = cu$H2, ids = cu$ids)
      }
      pdf(NULL)
      bj <- baujat(fit)
      dev.off()
      case[[paste0("baujat_", meth, "_", tst)]] <- list(x = bj$x, y = bj$y)
    }
  }

  # Vevea-Hedges step-function selection models (ML; FE for one case)
  sel_specs <- list(list(steps = c(0.025, 1), method = "ML"), list(steps = c(0.025, 0.5, 1), method = "ML"),
                    list(steps = c(0.025, 1), method = "FE"))
  sels <- list()
  # bcg's effects are negative: no one-sided p-value in (0, 0.025]. metafor fits anyway (delta runs to its bound
  # of 100, optimiser-dependent); mt_evidence refuses by default. normand1999 has 9 trials (below min_k = 10).
  if (id %in% c("bcg", "normand1999")) sel_specs <- list()
  for (sp in sel_specs) {
    fit <- rma(yi, vi, method = sp$method, control = ctrl)
    sel <- try(selmodel(fit, type = "stepfun", steps = sp$steps, control = selctrl(sp$steps)), silent = TRUE)
    if (inherits(sel, "try-error")) {
      sels[[length(sels) + 1]] <- list(steps = sp$steps, method = sp$method, error = as.character(sel))
      next
    }
    warn <- NULL
    seld <- try(suppressWarnings(selmodel(fit, type = "stepfun", steps = sp$steps)), silent = TRUE)
    sel <- withCallingHandlers(selmodel(fit, type = "stepfun", steps = sp$steps, control = selctrl(sp$steps)),
                               warning = function(w) {warn <<- conditionMessage(w); invokeRestart("muffleWarning")})
    rec <- function(x) list(
      estimate = unname(x$beta[1]), se = x$se, zval = x$zval, pval = x$pval, ci_low = x$ci.lb, ci_high = x$ci.ub,
      tau2 = x$tau2, se_tau2 = x$se.tau2, ci_low_tau2 = x$ci.lb.tau2, ci_high_tau2 = x$ci.ub.tau2,
      delta = x$delta, se_delta = x$se.delta, zval_delta = x$zval.delta, pval_delta = x$pval.delta,
      ci_low_delta = x$ci.lb.delta, ci_high_delta = x$ci.ub.delta, ll = x$ll, ll0 = x$ll0, lrt = x$LRT,
      lrt_df = x$LRTdf, lrt_p = x$LRTp, lrt_tau2 = x$LRT.tau2, lrt_p_tau2 = x$LRTp.tau2,
      k_per_interval = sel$ptable$k)
    sels[[length(sels) + 1]] <- c(list(steps = sp$steps, method = sp$method, warning = warn), rec(sel),
                                  list(sel_default = if (inherits(seld, "try-error")) NULL else rec(seld)))
  }
  case$selmodel <- sels
  out[[length(out) + 1]] <- case
  cat(id, "done\n")
}

# GOSH: every subset of normand1999 (k = 9, 511 subsets) for FE, DL and REML, and of bcg (k = 13, 8191 subsets)
# for DL and FE. Membership is written as a bit mask per row (study j adds 2^(j-1)), in metafor's row order.
gosh_cases <- list()
for (g in list(list(id = "normand1999", methods = c("FE", "DL", "REML")), list(id = "bcg", methods = c("FE", "DL")))) {
  s <- sets[[g$id]]
  for (meth in g$methods) {
    fit <- rma(s$yi, s$vi, method = meth, control = ctrl)
    gs <- gosh(fit, progbar = FALSE)
    mask <- as.numeric(gs$incl %*% (2^(seq_len(ncol(gs$incl)) - 1)))
    gosh_cases[[length(gosh_cases) + 1]] <- list(
      id = g$id, method = meth, k = gs$res$k, q = gs$res$QE, i2 = gs$res$I2, h2 = gs$res$H2,
      tau2 = gs$res$tau2, estimate = gs$res$estimate, mask = mask)
  }
}
cat("gosh done\n")

# Permutation tests. Exact: every sign flip (intercept only) or every distinct permutation of the moderator rows.
# Random: metafor's sample() draws, so only the observed statistics match exactly; the p-values agree within
# Monte Carlo error.
perm_cases <- list()
addperm <- function(id, label, yi, vi, mods, method, test, exact, iter, seed = NULL) {
  fit <- if (is.null(mods)) rma(yi, vi, method = method, test = test, control = ctrl)
         else rma(yi, vi, mods = mods, method = method, test = test, control = ctrl)
  pt <- if (is.null(seed)) permutest(fit, exact = exact, iter = iter, progbar = FALSE)
        else permutest(fit, exact = exact, iter = iter, progbar = FALSE, seed = seed)
  perm_cases[[length(perm_cases) + 1]] <<- list(
    id = id, label = label, method = method, test = test, exact = exact, iter = iter,
    exact_iter = pt$exact.iter, n_perm = length(pt$QM.perm),
    beta = unname(c(fit$beta)), zval = unname(fit$zval), qm = fit$QM, pval = unname(pt$pval), qm_p = pt$QMp,
    pval_asymptotic = unname(fit$pval), qm_p_asymptotic = fit$QMp,
    zval_perm_quantiles = unname(apply(as.matrix(pt$zval.perm), 2, quantile, probs = c(0.05, 0.25, 0.5, 0.75, 0.95))))
  cat(label, "done\n")
}
s <- sets$normand1999
addperm("normand1999", "normand1999 intercept REML z exact", s$yi, s$vi, NULL, "REML", "z", TRUE, 1000)
addperm("normand1999", "normand1999 intercept DL knha exact", s$yi, s$vi, NULL, "DL", "knha", TRUE, 1000)
s <- sets$bcg
addperm("bcg", "bcg intercept FE z exact", s$yi, s$vi, NULL, "FE", "z", TRUE, 1000)
b7 <- 1:7
ablat7 <- s$ablat[b7]
addperm("bcg7", "bcg first 7 ~ ablat REML z exact", s$yi[b7], s$vi[b7], ~ ablat7, "REML", "z", TRUE, 1000)
ablat8 <- s$ablat[1:8]
addperm("bcg8", "bcg first 8 ~ ablat DL knha exact", s$yi[1:8], s$vi[1:8], ~ ablat8, "DL", "knha", TRUE, 1000)
alloc <- s$alloc
addperm("bcg", "bcg ~ alloc DL z exact", s$yi, s$vi, ~ factor(alloc), "DL", "z", TRUE, 1000)
ablat <- s$ablat
addperm("bcg", "bcg ~ ablat REML z random", s$yi, s$vi, ~ ablat, "REML", "z", FALSE, 5000, seed = 1234)
s <- sets$hackshaw1998
addperm("hackshaw1998", "hackshaw1998 intercept REML z random", s$yi, s$vi, NULL, "REML", "z", FALSE, 5000, seed = 1234)

# Selection models with moderators (the location model mu_i = X_i beta). Each case keeps its moderator columns as
# passed to mt_evidence (text columns become treatment-coded dummies there, factor() here) and metafor's design
# matrix. metafor 3.8 fits on scaled moderators (control scaleX) but refits the tau^2 = 0 model for LRT.tau2 with
# the unscaled moderators from the scaled start values, so with a continuous moderator far from 0 that refit can
# stop far short of its maximum (hackshaw1998 ~ year: LRT.tau2 = 53.19). The same model fitted directly with
# tau2 = 0 is recorded too (ll_tau2_0, lrt_tau2_refit): that is the likelihood-ratio test of tau^2 = 0.
selmods_cases <- list()
addselmods <- function(id, label, yi, vi, moderators, formula, method, steps, alternative) {
  fit <- rma(yi, vi, mods = formula, data = as.data.frame(moderators), method = method, control = ctrl)
  sc <- selctrl(steps, fit$p)
  sel <- selmodel(fit, type = "stepfun", steps = steps, alternative = alternative, control = sc)
  seld <- try(suppressWarnings(selmodel(fit, type = "stepfun", steps = steps, alternative = alternative)),
              silent = TRUE)
  rec <- function(x) list(
    beta = unname(c(x$beta)), se = x$se, zval = x$zval, pval = x$pval, ci_low = x$ci.lb, ci_high = x$ci.ub,
    qm = x$QM, qm_p = x$QMp, tau2 = x$tau2, se_tau2 = x$se.tau2, ci_low_tau2 = x$ci.lb.tau2,
    ci_high_tau2 = x$ci.ub.tau2, delta = x$delta, se_delta = x$se.delta, zval_delta = x$zval.delta,
    pval_delta = x$pval.delta, ci_low_delta = x$ci.lb.delta, ci_high_delta = x$ci.ub.delta, ll = x$ll, ll0 = x$ll0,
    lrt = x$LRT, lrt_df = x$LRTdf, lrt_p = x$LRTp, lrt_tau2 = x$LRT.tau2, lrt_p_tau2 = x$LRTp.tau2,
    k_per_interval = x$ptable$k)
  refit <- list(ll_tau2_0 = NULL, lrt_tau2_refit = NULL, lrt_p_tau2_refit = NULL)
  if (method == "ML") {
    s0 <- selmodel(fit, type = "stepfun", steps = steps, alternative = alternative, control = sc, tau2 = 0)
    lr <- max(0, -2 * (s0$ll - sel$ll))
    refit <- list(ll_tau2_0 = s0$ll, lrt_tau2_refit = lr, lrt_p_tau2_refit = pchisq(lr, 1, lower.tail = FALSE))
  }
  selmods_cases[[length(selmods_cases) + 1]] <<- c(
    list(id = id, label = label, formula = deparse(formula), moderators = moderators, terms = colnames(fit$X),
         X = unname(fit$X), method = method, steps = steps, alternative = alternative, control = sc),
    rec(sel), refit, list(sel_default = if (inherits(seld, "try-error")) NULL else rec(seld)))
  cat(label, "done\n")
}
s <- sets$bcg
addselmods("bcg", "bcg ~ ablat ML less", s$yi, s$vi, list(ablat = s$ablat), ~ ablat, "ML", c(0.025, 1), "less")
addselmods("bcg", "bcg ~ ablat FE less", s$yi, s$vi, list(ablat = s$ablat), ~ ablat, "FE", c(0.025, 1), "less")
addselmods("bcg", "bcg ~ factor(alloc) ML less", s$yi, s$vi, list(alloc = s$alloc), ~ factor(alloc), "ML",
           c(0.025, 1), "less")
s <- sets$hackshaw1998
addselmods("hackshaw1998", "hackshaw1998 ~ year ML two-sided, three intervals", s$yi, s$vi, list(year = s$year),
           ~ year, "ML", c(0.05, 0.5, 1), "two.sided")
addselmods("hackshaw1998", "hackshaw1998 ~ factor(design) + year FE two-sided", s$yi, s$vi,
           list(design = dat.hackshaw1998$design, year = s$year), ~ factor(design) + year, "FE", c(0.05, 1),
           "two.sided")
s <- sets$molloy2014
addselmods("molloy2014", "molloy2014 ~ meanage + quality ML greater, three intervals", s$yi, s$vi,
           list(meanage = dat.molloy2014$meanage, quality = dat.molloy2014$quality), ~ meanage + quality, "ML",
           c(0.025, 0.5, 1), "greater")

doc <- list(generated_by = "tests/reference/make_robust_reference.R", r_version = R.version.string,
            metafor_version = as.character(packageVersion("metafor")),
            metadat_version = as.character(packageVersion("metadat")), control = ctrl, selmodel_control = selctrl(c(0.025, 1)),
            calls = list(pet = "lm(yi ~ sqrt(vi), weights = 1/vi)", peese = "lm(yi ~ vi, weights = 1/vi)",
                         cumul = "cumul(rma(yi, vi, method=, test=), order = year)",
                         baujat = "baujat(rma(yi, vi, method=, test=))",
                         selmodel = "selmodel(rma(yi, vi, method = 'ML'|'FE'), type = 'stepfun', steps=, control = list(reltol = 1e-15))",
                         selmodel_mods = "selmodel(rma(yi, vi, mods =, method = 'ML'|'FE'), type = 'stepfun', steps=, alternative=, control = list(reltol = 1e-15)); and with tau2 = 0",
                         gosh = "gosh(rma(yi, vi, method=))",
                         permutest = "permutest(rma(yi, vi, mods=, method=, test=), exact=, iter=)"),
            cases = out, gosh = gosh_cases, permutest = perm_cases,
            selmodel_mods = selmods_cases)
writeLines(toJSON(doc, digits = NA, auto_unbox = TRUE, null = "null", na = "null"),
           "tests/reference/robust_reference.json")
cat("wrote tests/reference/robust_reference.json\n")

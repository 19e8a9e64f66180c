# Reference values for mt_evidence, produced by metafor.
#
# Run from the repository root:   Rscript tests/reference/make_reference.R
# Needs R with metafor, metadat and jsonlite (Debian: r-base-core r-cran-metafor r-cran-metadat r-cran-jsonlite).
# Writes tests/reference/metafor_reference.json, which pytest reads (CI itself never needs R).
#
# Convergence control is tightened so that the comparison measures the estimator, not metafor's default
# stopping rule. Data sets marked "synthetic" are random draws made here (set.seed), not trials.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
ci_ctrl <- list(tol = 1e-12, maxiter = 10000)

num <- function(x) {
  x <- as.numeric(x)
  x[is.infinite(x)] <- NA
  x
}

# ------------------------------------------------------------------------------------------- data sets
datasets <- list()
add_ds <- function(id, yi, vi, source, synthetic = FALSE) {
  datasets[[id]] <<- list(id = id, yi = num(yi), vi = num(vi), source = source, synthetic = synthetic)
}
bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
add_ds("bcg", bcg$yi, bcg$vi, "metadat dat.bcg, escalc RR")
add_ds("bcg_k1", bcg$yi[1], bcg$vi[1], "metadat dat.bcg row 1")
add_ds("bcg_k2", bcg$yi[1:2], bcg$vi[1:2], "metadat dat.bcg rows 1-2")
add_ds("bcg_k3", bcg$yi[c(1, 4, 7)], bcg$vi[c(1, 4, 7)], "metadat dat.bcg rows 1, 4, 7")
norm_smd <- escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999)
add_ds("normand_smd", norm_smd$yi, norm_smd$vi, "metadat dat.normand1999, escalc SMD")
norm_md <- escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999)
add_ds("normand_md", norm_md$yi, norm_md$vi, "metadat dat.normand1999, escalc MD")
add_ds("hackshaw", dat.hackshaw1998$yi, dat.hackshaw1998$vi, "metadat dat.hackshaw1998")
add_ds("raudenbush", dat.raudenbush1985$yi, dat.raudenbush1985$vi, "metadat dat.raudenbush1985")
add_ds("konstantopoulos", dat.konstantopoulos2011$yi, dat.konstantopoulos2011$vi, "metadat dat.konstantopoulos2011")
# homogeneous: tau^2 estimates on the zero boundary
add_ds("hackshaw_first6", dat.hackshaw1998$yi[1:6], dat.hackshaw1998$vi[1:6], "metadat dat.hackshaw1998 rows 1-6")
set.seed(20261123)
for (s in 1:12) {
  k <- sample(2:25, 1)
  vi <- runif(k, 0.005, 0.4)
  tau <- sample(c(0, 0.1, 0.3, 0.6), 1)
  yi <- rnorm(k, 0.2, sqrt(vi + tau^2))
  add_ds(sprintf("synthetic_%02d", s), yi, vi, "synthetic: random draws (set.seed 20261123)", synthetic = TRUE)
}

# --------------------------------------------------------------------------------------------- pooling
methods <- c("FE", "DL", "HE", "HS", "SJ", "PM", "EB", "ML", "REML")
tests <- c("z", "knha", "adhoc", "t")
pool_cases <- list()
for (ds in datasets) {
  for (m in methods) {
    for (tt in tests) {
      k <- length(ds$yi)
      res <- tryCatch(
        suppressWarnings(rma(ds$yi, ds$vi, method = m, test = tt, control = ctrl)),
        error = function(e) e
      )
      case <- list(id = paste(ds$id, m, tt, sep = "/"), dataset = ds$id, method = m, test = tt)
      if (inherits(res, "error")) {
        case$error <- conditionMessage(res)
      } else {
        pis <- list()
        for (pt in c("default", "riley", "t", "simple")) {
          pr <- predict(res, pi.type = pt)
          pis[[pt]] <- list(pi_lb = num(pr$pi.lb), pi_ub = num(pr$pi.ub))
        }
        tau2_ci <- c(NA, NA); i2_ci <- c(NA, NA); h2_ci <- c(NA, NA)
        if (!(m %in% c("FE")) && k > 1) {
          cc <- tryCatch(suppressWarnings(confint(res, control = ci_ctrl)), error = function(e) NULL)
          if (!is.null(cc)) {
            tau2_ci <- cc$random["tau^2", 2:3]
            i2_ci <- cc$random["I^2(%)", 2:3]
            h2_ci <- cc$random["H^2", 2:3]
          }
        }
        fs <- fitstats(res, REML = FALSE)
        fsr <- fitstats(res, REML = TRUE)
        case$expected <- list(
          estimate = num(res$b), se = num(res$se), stat = num(res$zval), p = num(res$pval),
          ci_low = num(res$ci.lb), ci_high = num(res$ci.ub),
          tau2 = num(res$tau2), tau2_se = num(res$se.tau2),
          i2 = num(res$I2), h2 = num(res$H2), q = num(res$QE), q_p = num(res$QEp), k = res$k,
          tau2_ci_low = num(tau2_ci[1]), tau2_ci_high = num(tau2_ci[2]),
          i2_ci_low = num(i2_ci[1]), i2_ci_high = num(i2_ci[2]),
          h2_ci_low = num(h2_ci[1]), h2_ci_high = num(h2_ci[2]),
          loglik_ml = num(fs["logLik:", 1]), loglik_reml = num(fsr["logLik:", 1]),
          weights = num(weights(res)),
          pi = pis
        )
      }
      pool_cases[[length(pool_cases) + 1]] <- case
    }
  }
}

# --------------------------------------------------------------------------------------------- escalc
escalc_cases <- list()
add_es <- function(id, args, res) {
  escalc_cases[[length(escalc_cases) + 1]] <<- list(id = id, args = args, yi = num(res$yi), vi = num(res$vi))
}
nd <- dat.normand1999
cont_args <- list(m1 = nd$m1i, sd1 = nd$sd1i, n1 = nd$n1i, m2 = nd$m2i, sd2 = nd$sd2i, n2 = nd$n2i)
for (vt in c("LS", "HO")) {
  add_es(paste0("normand/MD/", vt), c(list(measure = "MD", vtype = vt), cont_args),
         escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd, vtype = vt))
}
for (vt in c("LS", "UB", "LS2", "AV")) {
  add_es(paste0("normand/SMD/", vt), c(list(measure = "SMD", vtype = vt), cont_args),
         escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd, vtype = vt))
}
b <- dat.bcg
bin_args <- list(a = b$tpos, b = b$tneg, c = b$cpos, d = b$cneg)
for (ms in c("RR", "OR")) {
  add_es(paste0("bcg/", ms), c(list(measure = ms), bin_args),
         escalc(ms, ai = tpos, bi = tneg, ci = cpos, di = cneg, data = b))
}
for (vt in c("LS", "UB")) {
  add_es(paste0("bcg/RD/", vt), c(list(measure = "RD", vtype = vt), bin_args),
         escalc("RD", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = b, vtype = vt))
}
# synthetic 2x2 tables with zero cells (not trials), to check the zero-cell corrections
z <- list(a = c(0, 2, 5, 0, 3), b = c(10, 8, 5, 12, 0), c = c(3, 0, 4, 0, 6), d = c(7, 10, 6, 9, 0))
for (ms in c("RR", "OR", "RD")) {
  for (to in c("only0", "all", "if0all", "none")) {
    for (add in c(0.5, 0.25)) {
      for (d00 in c(FALSE, TRUE)) {
        res <- suppressWarnings(escalc(ms, ai = z$a, bi = z$b, ci = z$c, di = z$d, add = add, to = to, drop00 = d00))
        add_es(sprintf("synthetic_zero/%s/%s/%g/%s", ms, to, add, d00),
               c(list(measure = ms, to = to, add = add, drop00 = d00), z), res)
      }
    }
  }
}
cmi <- list(m = c(2, 3, 5, 10, 30, 100, 1000), J = num(metafor:::.cmicalc(c(2, 3, 5, 10, 30, 100, 1000))))

# ------------------------------------------------------------------------------------------- subgroups
sub_cases <- list()
for (m in c("REML", "DL", "PM", "FE")) {
  for (tt in c("z", "knha")) {
    groups <- as.character(bcg$alloc)
    per <- list()
    for (g in unique(groups)) {
      r <- rma(yi, vi, data = bcg, subset = alloc == g, method = m, test = tt, control = ctrl)
      per[[g]] <- list(estimate = num(r$b), se = num(r$se), tau2 = num(r$tau2), k = r$k)
    }
    est <- sapply(per, function(x) x$estimate)
    se <- sapply(per, function(x) x$se)
    sep <- rma(est, sei = se, mods = ~ factor(names(per)), method = "FE")
    case <- list(id = paste("bcg_alloc", m, tt, sep = "/"), dataset = "bcg", groups = groups, method = m, test = tt,
                 per_group = per,
                 separate = list(q = num(sep$QM), df = sep$QMdf[1], p = num(sep$QMp)))
    if (m != "FE" || TRUE) {
      com <- rma(yi, vi, mods = ~ factor(alloc), data = bcg, method = m, test = tt, control = ctrl)
      case$common <- list(stat = num(com$QM), df1 = num(com$QMdf[1]), df2 = num(com$QMdf[2]), p = num(com$QMp),
                          tau2 = num(com$tau2))
    }
    sub_cases[[length(sub_cases) + 1]] <- case
  }
}

# ----------------------------------------------------------------------------------------- meta-regression
reg_cases <- list()
formulas <- list(ablat = ~ ablat, ablat_year = ~ ablat + year, alloc_ablat = ~ factor(alloc) + ablat)
for (fn in names(formulas)) {
  for (m in c("REML", "ML", "DL", "PM", "HE", "SJ", "EB", "HS", "FE")) {
    for (tt in c("z", "knha", "adhoc", "t")) {
      r <- suppressWarnings(rma(yi, vi, mods = formulas[[fn]], data = bcg, method = m, test = tt, control = ctrl))
      reg_cases[[length(reg_cases) + 1]] <- list(
        id = paste(fn, m, tt, sep = "/"), formula = fn, method = m, test = tt,
        expected = list(
          terms = rownames(r$b), b = num(r$b), se = num(r$se), stat = num(r$zval), p = num(r$pval),
          ci_low = num(r$ci.lb), ci_high = num(r$ci.ub), tau2 = num(r$tau2), tau2_se = num(r$se.tau2),
          qm = num(r$QM), qm_df1 = num(r$QMdf[1]), qm_df2 = num(r$QMdf[2]), qm_p = num(r$QMp),
          qe = num(r$QE), qe_p = num(r$QEp), i2 = num(r$I2), h2 = num(r$H2), r2 = num(if (is.null(r$R2)) NA else r$R2),
          loglik = num(logLik(r))
        )
      )
    }
  }
}
# ---------------------------------------------------------------------- multilevel short-vs-long model
# synthetic: 9 trials (random draws), some reporting both windows; within-trial covariance r * sqrt(v_s v_l)
set.seed(7)
ml_trial <- c(1, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 8, 8, 9)
ml_long <- c(0, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1)
ml_vi <- round(runif(length(ml_trial), 4, 30), 3)
ml_yi <- round(-8 + 4 * ml_long + rnorm(9, 0, 3)[ml_trial] + rnorm(length(ml_trial), 0, sqrt(ml_vi)), 3)
mv_cases <- list()
for (r in c(0, 0.5, 0.9)) {
  V <- diag(ml_vi)
  for (t in unique(ml_trial)) {
    idx <- which(ml_trial == t)
    if (length(idx) == 2) {
      V[idx[1], idx[2]] <- V[idx[2], idx[1]] <- r * sqrt(ml_vi[idx[1]] * ml_vi[idx[2]])
    }
  }
  fit <- rma.mv(ml_yi, V, mods = ~ ml_long, random = ~ 1 | ml_trial, method = "REML",
                control = list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-14, maxit = 10000))
  mv_cases[[length(mv_cases) + 1]] <- list(
    correlation = r, b = num(fit$b), se = num(fit$se), ci_low = num(fit$ci.lb), ci_high = num(fit$ci.ub),
    sigma2 = num(fit$sigma2), pval = num(fit$pval), loglik = num(logLik(fit))
  )
}
multilevel <- list(trial = ml_trial, long = ml_long, yi = ml_yi, vi = ml_vi, cases = mv_cases,
                   call = "rma.mv(yi, V, mods = ~ long, random = ~ 1 | trial, method = 'REML')")

bcg_moderators <- list(ablat = dat.bcg$ablat, year = dat.bcg$year, alloc = as.character(dat.bcg$alloc))

out <- list(
  meta = list(
    generator = "tests/reference/make_reference.R",
    r_version = R.version.string,
    metafor_version = as.character(packageVersion("metafor")),
    metadat_version = as.character(packageVersion("metadat")),
    jsonlite_version = as.character(packageVersion("jsonlite")),
    control = ctrl, confint_control = ci_ctrl,
    call_templates = list(
      pool = "rma(yi, vi, method = M, test = T, control = ctrl); predict(res, pi.type = P); confint(res, control = ci_ctrl); fitstats(res)",
      escalc = "escalc(measure, ..., vtype = V, add = A, to = TO, drop00 = D)",
      subgroup_separate = "rma(est, sei = se, mods = ~ factor(group), method = 'FE')$QM over per-group rma fits",
      subgroup_common = "rma(yi, vi, mods = ~ factor(alloc), method = M, test = T)$QM",
      metareg = "rma(yi, vi, mods = F, data = bcg, method = M, test = T, control = ctrl)"
    )
  ),
  datasets = unname(datasets),
  pool = pool_cases,
  escalc = escalc_cases,
  cmi = cmi,
  subgroup = sub_cases,
  metareg = reg_cases,
  bcg_moderators = bcg_moderators,
  multilevel = multilevel,
  bcg = list(yi = num(bcg$yi), vi = num(bcg$vi))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = FALSE),
           "tests/reference/metafor_reference.json")
cat("wrote tests/reference/metafor_reference.json:", length(pool_cases), "pooling cases,", length(escalc_cases),
    "escalc cases,", length(sub_cases), "subgroup cases,", length(reg_cases), "meta-regression cases\n")

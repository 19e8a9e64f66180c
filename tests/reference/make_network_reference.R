# Reference values for mt_evidence's network meta-analysis (src/mt_evidence/stats/network.py), from metafor.
#
# Run from the repository root:   Rscript tests/reference/make_network_reference.R
# Needs R with metafor, metadat and jsonlite (Debian: r-base-core r-cran-metafor r-cran-metadat r-cran-jsonlite).
# Writes tests/reference/network_reference.json, read by tests/test_network.py (CI never needs R).
#
# The contrast-based model is built here independently of the Python code, as in metafor's documentation of
# dat.senn2013: each study's arms against its baseline arm, the covariance of a multi-arm study's differences
# (the baseline arm's variance), and rma.mv(yi, V, mods = X, random = ~ comp | study, rho = 1/2).
# The component mapping used for dat.hasselblad1998 ("grp_counseling" = "ind_counseling" + "self_help") is made up
# to check the arithmetic of the additive model; it is not a claim about those treatments.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
ctrl <- list(rel.tol = 1e-10, iter.max = 10000, eval.max = 10000)

build <- function(study, trt, est, var, ref) {
  lv <- c(ref, sort(setdiff(unique(trt), ref)))
  rows <- list()
  Vb <- list()
  Rb <- list()
  for (s in unique(study)) {
    i <- which(study == s)
    i <- i[order(match(trt[i], lv))]
    b <- i[1]
    for (j in i[-1]) {
      rows[[length(rows) + 1]] <- data.frame(study = s, treat = trt[j], base = trt[b], yi = est[j] - est[b])
    }
    m <- length(i) - 1
    M <- matrix(var[b], m, m)
    diag(M) <- var[i[-1]] + var[b]
    Vb[[length(Vb) + 1]] <- M
    Rm <- matrix(0.5, m, m)
    diag(Rm) <- 1
    Rb[[length(Rb) + 1]] <- Rm
  }
  d <- do.call(rbind, rows)
  d$comp <- paste(d$treat, d$base, sep = "-")
  V <- bldiag(Vb)
  R <- bldiag(Rb)
  Xall <- sapply(lv, function(t) (d$treat == t) - (d$base == t))
  if (is.null(dim(Xall))) Xall <- matrix(Xall, nrow = 1)
  colnames(Xall) <- lv
  d$design <- ave(as.character(d$treat), d$study, FUN = function(x) "")
  for (s in unique(d$study)) {
    tt <- unique(c(d$base[d$study == s], d$treat[d$study == s]))
    d$design[d$study == s] <- paste(tt[order(match(tt, lv))], collapse = ":")
  }
  list(d = d, V = V, R = R, Xall = Xall, X = Xall[, -1, drop = FALSE], lv = lv)
}

coefs <- function(res, names) {
  list(names = names, estimate = unname(as.numeric(res$beta)), se = unname(res$se),
       ci_low = unname(res$ci.lb), ci_high = unname(res$ci.ub))
}

fit <- function(B, X, method) {
  d <- B$d
  if (method == "FE") {
    rma.mv(d$yi, B$V, mods = X, intercept = FALSE, method = "REML")
  } else if (method == "DL") {
    W <- solve(B$V)
    P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
    q <- as.numeric(t(d$yi) %*% P %*% d$yi)
    df <- nrow(d) - ncol(X)
    t2 <- max(0, (q - df) / sum(diag(P %*% B$R)))
    rma.mv(d$yi, B$V, mods = X, intercept = FALSE, random = ~ comp | study, rho = 1 / 2, tau2 = t2, data = d)
  } else {
    reml(d$yi, B$V, X, d)
  }
}

# REML with metafor's optimizer, then its REML log-likelihood maximised again over tau^2 by a tight one-dimensional
# search (nlminb stops at a relative tolerance near 1e-7 on these data); the model is refitted at that tau^2.
reml <- function(yi, V, X, d, ...) {
  res <- rma.mv(yi, V, mods = X, intercept = FALSE, random = ~ comp | study, rho = 1 / 2, data = d,
                method = "REML", control = ctrl, ...)
  ll <- function(t) as.numeric(logLik(rma.mv(yi, V, mods = X, intercept = FALSE, random = ~ comp | study,
                                              rho = 1 / 2, tau2 = t, data = d, method = "REML", ...)))
  t0 <- res$tau2
  opt <- optimize(ll, c(max(0, t0 * 0.9), t0 * 1.1 + 1e-8), maximum = TRUE, tol = 1e-14)
  t2 <- if (opt$objective > ll(t0)) opt$maximum else t0
  if (ll(0) >= ll(t2)) t2 <- 0
  rma.mv(yi, V, mods = X, intercept = FALSE, random = ~ comp | study, rho = 1 / 2, tau2 = t2, data = d,
         method = "REML", ...)
}

tau2_of <- function(res) if (is.null(res$tau2) || length(res$tau2) == 0) 0 else res$tau2

case_network <- function(id, arms, ref, source) {
  B <- build(arms$study, arms$treatment, arms$estimate, arms$variance, ref)
  out <- list(id = id, source = source, reference = ref, treatments = B$lv, arms = arms, models = list())
  for (m in c("REML", "DL", "FE")) {
    res <- fit(B, B$X, m)
    out$models[[m]] <- c(list(method = m, tau2 = tau2_of(res), q = res$QE, df = res$k - res$p),
                         coefs(res, B$lv[-1]))
  }
  # design-by-treatment interaction
  d <- B$d
  Z <- model.matrix(~ factor(paste(design, treat)) - 1, d)
  M <- B$X
  for (j in seq_len(ncol(Z))) {
    M2 <- cbind(M, Z[, j])
    if (qr(M2)$rank > qr(M)$rank) M <- M2
  }
  nz <- ncol(M) - ncol(B$X)
  full_fe <- rma.mv(d$yi, B$V, mods = Z, intercept = FALSE)
  cons_fe <- rma.mv(d$yi, B$V, mods = B$X, intercept = FALSE)
  full_re <- reml(d$yi, B$V, Z, d)
  wald <- rma.mv(d$yi, B$V, mods = M, intercept = FALSE, random = ~ comp | study, rho = 1 / 2,
                 tau2 = tau2_of(full_re), data = d, btt = (ncol(B$X) + 1):ncol(M))
  out$design_by_treatment <- list(
    q_total = cons_fe$QE, df_total = cons_fe$k - cons_fe$p, q_within = full_fe$QE,
    df_within = full_fe$k - full_fe$p, q_inconsistency = cons_fe$QE - full_fe$QE, df_inconsistency = nz,
    tau2_design_by_treatment = tau2_of(full_re), q_inconsistency_random = wald$QM,
    df_inconsistency_random = wald$QMdf[1])
  # node-splitting: delta added to arm B in the studies with both A and B (A earlier in the order)
  splits <- list()
  pairs <- do.call(rbind, lapply(split(d, d$study), function(g) {
    tt <- unique(c(g$base, g$treat))
    tt <- tt[order(match(tt, B$lv))]
    t(combn(tt, 2))
  }))
  pairs <- unique(pairs)
  for (r in seq_len(nrow(pairs))) {
    a <- pairs[r, 1]
    b <- pairs[r, 2]
    both <- tapply(seq_len(nrow(d)), d$study, function(i) any(c(d$treat[i], d$base[i]) == a) &&
                     any(c(d$treat[i], d$base[i]) == b))
    with_both <- d$study %in% names(both)[both]
    ind <- with_both * ((d$treat == b) - (d$base == b))
    Xs <- cbind(B$X, ind)
    if (qr(Xs)$rank < ncol(Xs)) {
      splits[[length(splits) + 1]] <- list(treat1 = b, treat2 = a, estimable = FALSE)
      next
    }
    res <- reml(d$yi, B$V, Xs, d)
    cvec <- c((B$lv[-1] == b) - (B$lv[-1] == a), 0)
    cdir <- cvec
    cdir[length(cdir)] <- 1
    vb <- vcov(res)
    splits[[length(splits) + 1]] <- list(
      treat1 = b, treat2 = a, estimable = TRUE, tau2 = tau2_of(res),
      difference = unname(res$beta[length(res$beta)]), difference_se = unname(res$se[length(res$se)]),
      indirect = sum(cvec * res$beta), indirect_se = sqrt(as.numeric(t(cvec) %*% vb %*% cvec)),
      direct = sum(cdir * res$beta), direct_se = sqrt(as.numeric(t(cdir) %*% vb %*% cdir)))
  }
  out$node_split <- splits
  out$B <- B
  out
}

case_component <- function(net, components, inactive) {
  B <- net$B
  lv <- B$lv
  comps <- unique(unlist(lapply(setdiff(lv, inactive), function(t) if (!is.null(components[[t]])) components[[t]] else t)))
  C <- matrix(0, length(lv), length(comps), dimnames = list(lv, comps))
  for (t in setdiff(lv, inactive)) {
    for (cc in (if (!is.null(components[[t]])) components[[t]] else t)) C[t, cc] <- 1
  }
  Xc <- B$Xall %*% C
  out <- list(components = comps, mapping = components, inactive = inactive, models = list())
  for (m in c("REML", "DL", "FE")) {
    res <- fit(B, Xc, m)
    fe <- rma.mv(B$d$yi, B$V, mods = Xc, intercept = FALSE)
    out$models[[m]] <- c(list(method = m, tau2 = tau2_of(res), q = fe$QE, df = fe$k - fe$p,
                              q_diff = fe$QE - net$models[["FE"]]$q, df_diff = (fe$k - fe$p) - net$models[["FE"]]$df),
                         coefs(res, comps))
  }
  out
}

# dat.senn2013: glucose-lowering drugs, mean change in HbA1c (one three-arm study)
s <- dat.senn2013
senn <- case_network("senn2013", data.frame(study = s$study, treatment = s$treatment, mean = s$mi, sd = s$sdi,
                                            n = s$ni, estimate = s$mi, variance = s$sdi^2 / s$ni),
                     "placebo", "metadat dat.senn2013 (Senn et al. 2013); mean differences")
# dat.hasselblad1998: smoking cessation, arm-level log odds with 1/2 added to every cell (two three-arm studies)
h <- dat.hasselblad1998
hx <- h$xi + 0.5
hn <- h$ni - h$xi + 0.5
hass <- case_network("hasselblad1998", data.frame(study = as.character(h$study), treatment = h$trt,
                                                  events = h$xi, n = h$ni,
                                                  estimate = log(hx / hn), variance = 1 / hx + 1 / hn),
                     "no_contact", "metadat dat.hasselblad1998 (Hasselblad 1998); log odds ratios, 1/2 added to every cell")
hass$component <- case_component(hass, list(grp_counseling = c("ind_counseling", "self_help")), "no_contact")
senn$B <- NULL
hass$B <- NULL

out <- list(
  generated_by = "tests/reference/make_network_reference.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  metadat_version = as.character(packageVersion("metadat")),
  cases = list(senn, hass)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null", na = "null", pretty = FALSE),
           "tests/reference/network_reference.json")
cat("wrote tests/reference/network_reference.json\n")

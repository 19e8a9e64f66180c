"""Writes the project's notebooks (thin: parameters, then calls into mt_evidence). Run after editing:
    .venv/bin/python notebooks/make_notebooks.py
Notebooks are committed without outputs; the test suite executes them."""

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).parent


def notebook(title: str, intro: str, params: str, cells: list[tuple[str, str]]) -> nbf.NotebookNode:
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbf.v4.new_markdown_cell(f"# {title}\n\n{intro}"))
    p = nbf.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells.append(p)
    for kind, src in cells:
        nb.cells.append(nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src))
    return nb


NOTEBOOKS = {
    "01_evidence.ipynb": notebook(
        "1. The evidence: loading and validating",
        "Loads the bundled trials (or your own extraction folder or workbook), lists every validation problem, "
        "and shows what each trial contributes and where each number was read.",
        "# parameters: an evidence folder or .xlsx workbook; None = the bundled trials\ndata_path = None",
        [
            ("code", "import mt_evidence as me\nfrom mt_evidence.reporting import plots\n\nproblems = me.validate_path(data_path or me.bundled_data_dir())\nprint(f'{len(problems)} problem(s)')\nfor p in problems:\n    print(p)"),
            ("code", "ev = me.load_evidence(data_path)\nev"),
            ("md", "## Trials"),
            ("code", "ev.studies[['study_id', 'citation', 'population', 'n_randomised', 'country']]"),
            ("md", "## Arm-level rows and where they were read"),
            ("code", "ev.arms[['study_id', 'arm', 'intervention', 'outcome', 'instrument', 'timepoint_weeks', 'n', 'mean', 'sd', 'se', 'source_location']]"),
            ("md", "## Between-group contrasts"),
            ("code", "ev.contrasts[['study_id', 'arm1', 'arm2', 'outcome', 'timepoint_weeks', 'estimate', 'ci_low', 'ci_high', 'direction_stored', 'role']]"),
            ("md", "## Risk of bias (published judgements only)"),
            ("code", "plots.plot_rob(ev.studies, ev.rob);"),
        ],
    ),
    "02_short_vs_long.ipynb": notebook(
        "2. Short term against long term, for every comparison",
        "Pools each comparison (manual therapy, exercise, combined care, control) per follow-up window, then "
        "shows short and long term side by side and estimates the change within trials.",
        "# parameters\ndata_path = None      # evidence folder or workbook; None = bundled\nconfig_path = None    # analysis TOML; None = the package default (Cochrane windows, Ostelo 2008 thresholds)\nmeasure = 'md100'     # 'md100' (points on 0-100) or 'smd'",
        [
            ("code", "import mt_evidence as me\nfrom mt_evidence.reporting import plots\nfrom mt_evidence.synthesis import analysis\n\ncfg = analysis.load_config(config_path)\nprint(cfg.describe())\nev = me.load_evidence(data_path)\nframe = analysis.comparison_frame(ev, cfg, measure=measure)"),
            ("md", "## Every effect, with the rule that kept or dropped it"),
            ("code", "frame[['study_id', 'comparison', 'outcome', 'window', 'timepoint_weeks', 'instrument', 'yi', 'used', 'why_not']]"),
            ("md", "## Pooled per window"),
            ("code", "results = analysis.pool_windows(frame, cfg)\nanalysis.results_table(results, cfg)"),
            ("md", "## Short and long term side by side"),
            ("code", "for comp in analysis.ALL_COMPARISONS:\n    for outcome in ('pain', 'disability'):\n        sl = analysis.short_vs_long(frame, comp, outcome, cfg)\n        if sl.short is None and sl.long is None:\n            continue\n        first, second = analysis.COMPARISON_LABELS[comp]\n        plots.plot_short_long(sl.short, sl.long, xlabel='Mean difference (0-100)' if measure == 'md100' else 'SMD',\n                              favours=(first, second), mid=cfg.thresholds.get(outcome) if measure == 'md100' else None,\n                              title=f'{first} vs {second}: {outcome}', change_text=sl.summary())"),
        ],
    ),
    "03_sensitivity.ipynb": notebook(
        "3. Sensitivity analyses",
        "For each comparison, outcome and window: common vs random effects, the Wald z interval, low risk of "
        "bias only (published judgements; trials not assessed are left out), no derived values, unadjusted "
        "values only; and funnel plots where there are trials to plot.",
        "# parameters\ndata_path = None\nconfig_path = None",
        [
            ("code", "import pandas as pd\nimport mt_evidence as me\nfrom mt_evidence.reporting import plots\nfrom mt_evidence.synthesis import analysis\n\ncfg = analysis.load_config(config_path)\nev = me.load_evidence(data_path)\nframe = analysis.comparison_frame(ev, cfg)\nresults = analysis.pool_windows(frame, cfg)"),
            ("code", "tables = []\nfor w in results:\n    s = analysis.sensitivity(frame, w.comparison, w.outcome, w.window, cfg)\n    s.insert(0, 'window', w.window)\n    s.insert(0, 'outcome', w.outcome)\n    s.insert(0, 'comparison', w.comparison)\n    tables.append(s)\npd.concat(tables, ignore_index=True) if tables else 'no analyses'"),
            ("md", "## Funnel plots (contour-enhanced)"),
            ("code", "for w in results:\n    if w.k >= 3:\n        ax = plots.plot_funnel(w.result, xlabel='Mean difference (0-100)')\n        ax.figure.suptitle(f'{w.comparison}, {w.outcome}, {w.window}')"),
        ],
    ),
    "04_network.ipynb": notebook(
        "4. One network: manual therapy, exercise, combined care and the controls",
        "Every trial of an outcome and window in one network (docs/methods.md section 16): the estimates against "
        "usual care, the league table, consistency (design-by-treatment interaction, node-splitting), the "
        "additive component model (is combined care the sum of its parts?), P-scores with their caveat, and "
        "durability: every window in one model, and how each care's effect changes over time.",
        "# parameters\ndata_path = None      # evidence folder or workbook; None = bundled\nconfig_path = None\n"
        "outcome = 'disability'  # 'pain' or 'disability'\nwindow = 'short'        # a window of the settings",
        [
            ("code", "import mt_evidence as me\nfrom mt_evidence.reporting import plots\nfrom mt_evidence.stats.network import P_SCORE_CAVEAT\nfrom mt_evidence.synthesis import analysis, network\n\ncfg = analysis.load_config(config_path)\nev = me.load_evidence(data_path)\nframe = analysis.comparison_frame(ev, cfg)\nna = network.analyse_network(ev, outcome, window, cfg, frame)\nna.result if na.fitted else na.reason"),
            ("md", "## What enters the network, and what is left out"),
            ("code", "arms, contrasts, left_out = network.network_input(ev, outcome, window, cfg, frame)\ndisplay(arms, contrasts)\nleft_out"),
            ("md", "## The network and its estimates"),
            ("code", "plots.plot_network_graph(na.result, labels=network.NODE_LABELS);\nplots.plot_network_forest(na.result, labels=network.NODE_LABELS, xlabel='Difference (0-100)', mid=cfg.thresholds.get(outcome));"),
            ("md", "## Every pair (league table)"),
            ("code", "plots.plot_league(na.result, labels=network.NODE_LABELS);\nna.result.league()"),
            ("md", "## Consistency"),
            ("code", "display(na.result.design_by_treatment())\nna.result.node_split()"),
            ("md", "## Is combined care the sum of its parts? (additive component model)"),
            ("code", "(na.component, na.component.additivity) if na.component is not None else 'no combined care in this network'"),
            ("md", "## Ranking (read with its caveat)"),
            ("code", "print(P_SCORE_CAVEAT)\nna.result.p_scores(small_values='good')"),
            ("md", "## Durability: every window in one model\n\nEach care's effect against the reference in each window, a trial's repeated time points correlated (docs/methods.md section 16). The change from the first window to the last says whether an effect fades (claim 2); the within-trial correlation is assumed, so try other values."),
            ("code", "nt = network.analyse_network_over_time(ev, outcome, cfg, frame)\nprint(nt.result if nt.fitted else nt.reason)\nnt.result.changes() if nt.fitted else None"),
            ("code", "if nt.fitted:\n    by_window = {w: nt.result.at(w) for w in nt.result.times}\n    plots.plot_effects_over_time(by_window, labels=network.NODE_LABELS, mid=cfg.thresholds.get(outcome))\nnetwork.durability_context(nt)['text']"),
            ("code", "# the assumed within-trial correlation between time points, varied\n{rho: network.analyse_network_over_time(ev, outcome, cfg, frame, rho_within=rho).result.changes()[['treatment', 'estimate', 'ci_low', 'ci_high']].round(2).to_dict('records') for rho in (0.0, 0.5, 0.9)}"),
        ],
    ),
    "05_robustness.ipynb": notebook(
        "5. Robustness of the main findings",
        "How much does one analysis depend on single trials, on small-study effects and on the analysis choices "
        "made? Leave-one-out and influence diagnostics (metafor's leave1out and influence), the Baujat plot, the "
        "cumulative meta-analysis by year, GOSH (every subset of the trials), a permutation test, the small-study "
        "tests (which refuse below 10 trials), and the multiverse: every defensible combination of analysis "
        "choices at once, drawn as a specification curve (docs/methods.md section 19).",
        "# parameters\ndata_path = None      # evidence folder or workbook; None = bundled\nconfig_path = None\n"
        "comparison = 'exercise_vs_pragmatic'\noutcome = 'disability'\nwindow = 'short'\ngosh_method = 'DL'",
        [
            ("code", "import mt_evidence as me\nfrom mt_evidence.reporting import plots\nfrom mt_evidence.reporting.speccurve import plot_specification_curve\nfrom mt_evidence.synthesis import analysis, multiverse\n\ncfg = analysis.load_config(config_path)\nev = me.load_evidence(data_path)\nframe = analysis.comparison_frame(ev, cfg)\nw = next(r for r in analysis.pool_windows(frame, cfg) if (r.comparison, r.outcome, r.window) == (comparison, outcome, window))\nlabels = list(w.studies['study_id'])\nyi, vi = w.studies['yi'].to_numpy(float), w.studies['vi'].to_numpy(float)\nw.result"),
            ("md", "## Single trials: leave one out, influence, Baujat"),
            ("code", "me.leave_one_out(yi, vi, labels=labels)"),
            ("code", "me.influence(yi, vi, labels=labels)"),
            ("code", "plots.plot_baujat(me.baujat(yi, vi, labels=labels));"),
            ("md", "## The evidence as it accumulated, by year of publication"),
            ("code", "years = ev.studies.set_index('study_id')['year']\norder = [years.get(s.split(' (')[0]) for s in labels]\nplots.plot_cumulative(me.cumulative(yi, vi, order=order, labels=labels), xlabel='Mean difference (0-100)');"),
            ("md", "## GOSH: the pooled result of every subset of the trials, and a permutation test"),
            ("code", "g = me.gosh(yi, vi, method=gosh_method, labels=labels, progress=True)\nplots.plot_gosh(g, xlabel='Mean difference (0-100)');"),
            ("code", "me.permutation_test(yi, vi, method='REML', seed=1)"),
            ("md", "## Small-study effects\n\nEgger's test, trim and fill, PET-PEESE and the selection model need at least 10 trials (Cochrane "
                   "Handbook 13.3.5.4): with fewer they refuse, and this analysis has fewer."),
            ("code", "print(f'{w.result.k} trials')\n[t.__name__ for t in (me.egger_test, me.trim_and_fill, me.pet_peese, me.selection_model)] if w.result.k < 10 else me.egger_test(yi, vi)"),
            ("md", "## The multiverse: every combination of reasonable analysis choices"),
            ("code", "mv = multiverse.multiverse(frame, cfg)\nmv.summary()"),
            ("code", "plot_specification_curve(mv.of(comparison, outcome, window), threshold=cfg.thresholds.get(outcome), title=f'{comparison}, {outcome}, {window}');"),
        ],
    ),
    "06_bring_your_own_review.ipynb": notebook(
        "6. Bring your own review: a RevMan file and a wide extraction sheet",
        "Another review's data, from import to forest plots. A RevMan 5 file: every analysis read, written as an "
        "evidence folder with its own vocabulary (review.toml), and its meta-analyses re-run under RevMan 5's "
        "conventions beside the results RevMan stored. A wide extraction sheet: mapped to the package's tables by a "
        "mapping file (docs/bring-your-own-review.md), validated against its own vocabulary, and analysed. The "
        "defaults are SYNTHETIC files shipped with the tests (invented studies); point the parameters at your own.",
        "# parameters: None = the SYNTHETIC examples in tests/fixtures\nrevman_file = None\nsheet = None\n"
        "mapping = None\nout_dir = None      # where the evidence folders go (None: a temporary folder)",
        [
            ("code", "import tempfile\nfrom pathlib import Path\n\nimport mt_evidence as me\nfrom mt_evidence.reporting import plots\nfrom mt_evidence.synthesis import analysis\n\nfixtures = me.bundled_data_dir().parents[1] / 'tests' / 'fixtures'\nrevman_file = revman_file or fixtures / 'revman_synthetic' / 'synthetic_review.rm5'\nsheet = sheet or fixtures / 'wide_synthetic' / 'sheet.csv'\nmapping = mapping or fixtures / 'wide_synthetic' / 'mapping.toml'\nout = Path(out_dir or tempfile.mkdtemp(prefix='byo-'))"),
            ("md", "## A RevMan 5 review\n\nEvery continuous, dichotomous and generic inverse-variance analysis, rows inside subgroups too."),
            ("code", "rv = me.read_revman_review(revman_file)\nrv"),
            ("code", "rv.analyses[['analysis', 'outcome_name', 'data_type', 'measure', 'method', 'model', 'rows']]"),
            ("md", "Each pooled analysis re-run under RevMan 5's settings, beside the result RevMan stored (this synthetic "
                   "file stores none, so only ours is shown; a real review gives both and their difference)."),
            ("code", "rv.concordance()[['analysis', 'measure', 'method', 'model', 'status', 'k', 'revman_estimate', 'ours_estimate', 'ours_ci_low', 'ours_ci_high', 'max_abs_diff']]"),
            ("code", "folder = me.write_revman_folder(rv, out / 'revman_review')\nprint(folder.summary_line())\nprint((out / 'revman_review' / 'review.toml').read_text())"),
            ("md", "The continuous analysis as a forest plot (RevMan 5's conventions: DerSimonian-Laird, z interval), and the "
                   "dichotomous one by Mantel-Haenszel."),
            ("code", "cont = rv.rows[(rv.rows['data_type'] == 'CONT') & rv.rows['poolable']]\nes = me.effect_size('MD', m1=cont['mean1'], sd1=cont['sd1'], n1=cont['n1'], m2=cont['mean2'], sd2=cont['sd2'], n2=cont['n2'])\nres = me.pool(es['yi'], es['vi'], labels=list(cont['study_name']), preset='revman5')\nplots.plot_forest(res, xlabel='Mean difference', favours=tuple(cont[['group_label_1', 'group_label_2']].iloc[0]));\nres"),
            ("code", "dich = rv.rows[(rv.rows['data_type'] == 'DICH') & rv.rows['poolable']]\nme.pool_binary('RR', dich['events1'], dich['n1'], dich['events2'], dich['n2'], method='MH', labels=list(dich['study_name']), preset='revman5')"),
            ("md", "## A wide extraction sheet\n\nOne row per arm, outcomes side by side; the mapping says which column is what, recodes "
                   "values, filters rows and builds the studies and risk-of-bias tables (docs/bring-your-own-review.md)."),
            ("code", "print(Path(mapping).read_text())"),
            ("code", "imported = me.import_wide(sheet, mapping, out / 'wide_review')\nimported"),
            ("code", "ev = me.load_evidence(out / 'wide_review')\nprint(ev.summary())\nev.vocabulary"),
            ("code", "frame = analysis.comparison_frame(ev)\nresults = analysis.pool_windows(frame)\nanalysis.results_table(results)"),
            ("code", "for w in results:\n    first, second = analysis.labels_of(w.comparison, ev.vocabulary)\n    plots.plot_forest(w.result, xlabel='Mean difference (0-100)', favours=(first, second), title=f'{first} vs {second}: {w.outcome}, {w.window}')"),
        ],
    ),
}

if __name__ == "__main__":
    for name, nb in NOTEBOOKS.items():
        nbf.write(nb, HERE / name)
        print("wrote", HERE / name)

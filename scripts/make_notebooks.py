"""Write the notebooks from their cell sources (outputs stripped).

Usage: python scripts/make_notebooks.py
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1] / "notebooks"

NB01 = [
    new_markdown_cell(
        "# Fit a posterior to one spectrum\n\n"
        "Simulate an exact finite-N HTMP spectrum, fit the `htmp` model with NUTS, "
        "summarise the posterior of the eigenvalue repulsion κ, and compare the "
        "empirical spectral density with the fitted law. `N` is small so the "
        "notebook runs in seconds; set `N = 1000` for a sharper posterior."
    ),
    new_code_cell(
        "import arviz_plots as azp\n"
        "import numpy as np\n\n"
        "import htmp_infer as hi\n"
        "from htmp_infer.limit import htmp_tail_exponents  # not at the root\n\n"
        "N, GAMMA, KAPPA, SEED = 200, 0.3255, 1.9, 0  # the paper's heavy-tailed phase"
    ),
    new_markdown_cell(
        "## Simulate\n"
        "`hi.simulate` draws the N eigenvalues of the β-Laguerre gas with "
        "β = κ/N exactly (Dumitriu–Edelman tridiagonal model) and returns a "
        "`hi.Spectrum`."
    ),
    new_code_cell(
        "spectrum = hi.simulate(KAPPA, gamma=GAMMA, n=N, seed=SEED, scale=3.0)\n"
        "spectrum.summary()"
    ),
    new_markdown_cell(
        "## Fit\n"
        "The scale is integrated out exactly, so NUTS samples log κ alone; the "
        "result is an ArviZ 1.x `DataTree`."
    ),
    new_code_cell(
        "dt = hi.fit(spectrum, method='nuts', chains=2, draws=500, warmup=500,\n"
        "            seed=SEED, progress=False, ppc_draws=20)\n"
        "sorted(dt.children)"
    ),
    new_code_cell("hi.summarize(dt)"),
    new_markdown_cell(
        "## Interpret\n"
        "κ sets the tails: the lower-tail exponent δ−1 of the weight spectrum and "
        "the HT-SR α of the inverse (kernel) spectrum."
    ),
    new_code_cell(
        "kappa = dt['posterior']['kappa'].values.ravel()\n"
        "lo, med, hi_ = np.quantile(kappa, [0.05, 0.5, 0.95])\n"
        "print(f'kappa: median {med:.3g}, 90% interval [{lo:.3g}, {hi_:.3g}]')\n"
        "htmp_tail_exponents(GAMMA, med)"
    ),
    new_code_cell("azp.plot_dist(dt, var_names=['kappa', 'scale']);"),
    new_code_cell("hi.plot_esd(dt);"),
]


NB02 = [
    new_markdown_cell(
        "# Compare mechanisms across the layers of a real network\n\n"
        "The shipped default `data/minilm_spectra.npz` holds the eigenvalues of every "
        "weight matrix of all-MiniLM-L6-v2 (provenance in `data/README.md`). "
        "`scan` fits each layer, weighs the mechanisms and gives the phase "
        "posterior; the hierarchical model then pools κ across layers of the same "
        "kind. To run in seconds the notebook takes four layers; set "
        "`INCLUDE = None` for all of them (what `make demo` does)."
    ),
    new_code_cell(
        "from pathlib import Path\n\n"
        "import htmp_infer as hi\n"
        "# not at the root: the layers' spectra and the hierarchical model\n"
        "from htmp_infer.inference.hierarchy import fit_layers\n"
        "from htmp_infer.networks.bundle import SpectraBundle\n\n"
        "INCLUDE = r'layer\\.(0|5)\\.(attention\\.self\\.query|intermediate)'\n"
        "# two models keep the notebook quick; hi.ScanOptions() compares all four\n"
        "OPTIONS = hi.ScanOptions(models=('mp', 'htmp'), chains=2, draws=300,\n"
        "                      warmup=200, ppc_draws=10)\n"
        "DATA = Path(hi.__file__).resolve().parents[1] / 'data'  # the repo's data/\n"
        "bundle = SpectraBundle.load(DATA / 'minilm_spectra.npz')\n"
        "print(len(bundle.layers), 'matrices;', len(bundle.skipped), 'skipped')\n"
        "bundle.meta['model'], bundle.meta['license']"
    ),
    new_markdown_cell("## The per-layer table"),
    new_code_cell(
        "result = hi.scan(bundle, include=INCLUDE, options=OPTIONS, progress=False,\n"
        "              plots=False)\n"
        "result.table[['layer', 'shape', 'kappa_median', 'kappa_q05', 'kappa_q95',\n"
        "              'hill_alpha', 'best_model', 'phase', 'phase_prob', 'n_spikes',\n"
        "              'ppc_p']]"
    ),
    new_markdown_cell(
        "## κ across layers and the mechanism weights\n"
        "A forest of log₁₀ κ (arviz-plots), the posterior model probabilities, and "
        "each layer's ESD with its `htmp` fit."
    ),
    new_code_cell("hi.plot_kappa_forest(result.tree);"),
    new_code_cell("hi.plot_mechanisms(result.tree);"),
    new_code_cell(
        "hi.plot_esd_grid({name: t['fit_htmp'] for name, t in result.layers.items()});"
    ),
    new_markdown_cell(
        "## Hierarchical view\n"
        "log κ of every layer = network mean + kind effect + depth slope + layer "
        "deviation, fitted jointly with the exact likelihood of each layer. The "
        "group table gives each kind's κ at mid-depth; layers whose deviation "
        "interval excludes 0 stand out from their group. The chains here are "
        "short so that the notebook runs in CI (r̂ may exceed 1.01 and warn); use "
        "the defaults (4 chains × 1000 draws) or `htmp-infer compare-layers` for "
        "a real analysis."
    ),
    new_code_cell(
        "layers = [x for x in bundle.layers if x.name in set(result.table['layer'])]\n"
        "hier = fit_layers([x.spectrum() for x in layers], [x.kind for x in layers],\n"
        "                  [x.depth for x in layers], chains=2, draws=200,\n"
        "                  warmup=200, progress=False)\n"
        "hier.groups"
    ),
    new_code_cell("hier.standouts"),
]

NB03 = [
    new_markdown_cell(
        "# Mechanisms and phases on synthetic spectra\n\n"
        "Simulate one spectrum from each mechanism model (exact samplers), weigh "
        "the models against each other, and read the 5+1 phase posterior. "
        "N is small so the notebook runs quickly; the confusion matrix at N = 1000 "
        "is in `benchmarks/confusion.py`."
    ),
    new_code_cell(
        "import numpy as np\n"
        "import pandas as pd\n\n"
        "import htmp_infer as hi\n"
        "# not at the root: exact draws from each model's prior\n"
        "from htmp_infer.validation.calibration import simulate_from_prior\n\n"
        "N, GAMMA, SEED = 200, 0.5, 3\n"
        "MODELS = ['mp', 'htmp', 'inverse_htmp', 'power_law']"
    ),
    new_code_cell(
        "rng = np.random.default_rng(SEED)\n"
        "rows, phases, idents = {}, {}, {}\n"
        "for truth in MODELS:\n"
        "    params, spectrum, _ = simulate_from_prior(truth, rng, N, GAMMA)\n"
        "    res = hi.compare(spectrum, MODELS, seed=SEED, chains=2, draws=300,\n"
        "                  warmup=300, progress=False, ppc_draws=0)\n"
        "    rows[truth] = res.table['weight']\n"
        "    phases[truth] = res.phases.to_series()\n"
        "    idents[truth] = res.identification\n"
        "pd.DataFrame(rows).T.round(3)  # rows: true model; columns: weight"
    ),
    new_markdown_cell("The phase posterior of each spectrum (from the `htmp` fit):"),
    new_code_cell("pd.DataFrame(phases).T.round(3)"),
    new_markdown_cell(
        "What each spectrum identifies in the `power_law` model. A tail index "
        "with a *lower bound only* is one the spectrum cannot tell from the "
        "model's HTMP limit b' → ∞; read it with the weights above "
        "(`docs/model.md` §3)."
    ),
    new_code_cell(
        "ident = pd.concat(idents, names=['truth']).reset_index(level=0)\n"
        "ident = ident[ident['model'] == 'power_law']\n"
        "ident[['truth', 'parameter', 'contraction', 'verdict']].round(3)"
    ),
]

NB04 = [
    new_markdown_cell(
        "# κ against batch size in a network trained here\n\n"
        "`scripts/train_batch_size.py` trained one MLP on scikit-learn's digits "
        "at four batch sizes (same initialisation, seeds and epochs; "
        "details in `data/batch_size/README.md`). The paper's follow-up reports κ "
        "falling as the batch shrinks (MiniAlexNet on CIFAR-10). Here we fit κ "
        "per hidden layer for each batch size and see whether the trend appears "
        "at this scale."
    ),
    new_code_cell(
        "from pathlib import Path\n\n"
        "import matplotlib.pyplot as plt\n"
        "import pandas as pd\n\n"
        "import htmp_infer as hi\n\n"
        "# the hidden-to-hidden layers (the input layer has N = 64, the output 10)\n"
        "INCLUDE = r'dense_[12]/kernel'\n"
        "OPTIONS = hi.ScanOptions(models=('htmp',), chains=2, draws=300, warmup=300,\n"
        "                      ppc_draws=20)\n"
        "DATA = Path(hi.__file__).resolve().parents[1] / 'data'  # the repo's data/\n"
        "files = sorted((DATA / 'batch_size').glob('batch_*.npz'),\n"
        "               key=lambda p: -int(p.stem.split('_')[1]))\n"
        "[p.name for p in files]"
    ),
    new_code_cell(
        "tables = []\n"
        "for path in files:\n"
        "    res = hi.scan(path, include=INCLUDE, options=OPTIONS, cache_dir=None,\n"
        "               progress=False, plots=False)\n"
        "    tables.append(res.table.assign(batch=int(path.stem.split('_')[1])))\n"
        "table = pd.concat(tables)\n"
        "table[['batch', 'layer', 'shape', 'kappa_median', 'kappa_q05', 'kappa_q95',\n"
        "       'hill_alpha', 'phase', 'n_spikes', 'ppc_p']]"
    ),
    new_code_cell(
        "fig, ax = plt.subplots(figsize=(6, 3.5))\n"
        "for layer, g in table.groupby('layer'):\n"
        "    ax.errorbar(g['batch'], g['kappa_median'],\n"
        "                yerr=[g['kappa_median'] - g['kappa_q05'],\n"
        "                      g['kappa_q95'] - g['kappa_median']],\n"
        "                marker='o', capsize=3, label=layer)\n"
        "ax.set(xscale='log', yscale='log', xlabel='batch size',\n"
        "       ylabel='κ (median, 90% interval)')\n"
        "ax.legend(fontsize=7);"
    ),
    new_markdown_cell(
        "**What we found**: at this scale the trend does not appear in κ. Every "
        "batch size (1024, 256, 64, 16) leaves the hidden layers random-like, with "
        "κ close to N (β ≈ 1, a Gaussian matrix). What the small batch does change "
        "is the top of the spectrum: batch 16 grows a few spikes above the bulk of "
        "dense_1. The moment estimator κ̂ in `data/batch_size/README.md` falls with "
        "the batch size only because those outliers inflate the second moment. The "
        "network stays within 14% of its initialisation. This is a weak test of the "
        "mechanism, not a replication of the MiniAlexNet result; "
        "`benchmarks/temperature_manipulation.py` asks the same of the `power_law` "
        "model's tail."
    ),
]


def main() -> None:
    ROOT.mkdir(exist_ok=True)
    books = {
        "01_fit_one_spectrum.ipynb": NB01,
        "02_compare_layers.ipynb": NB02,
        "03_mechanisms.ipynb": NB03,
        "04_batch_size.ipynb": NB04,
    }
    for name, cells in books.items():
        nb = new_notebook(cells=cells)
        for i, cell in enumerate(nb.cells):
            cell.id = f"cell-{i:02d}"  # stable ids: regenerating changes nothing
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        nbformat.write(nb, ROOT / name)


if __name__ == "__main__":
    main()

"""The paper's findings at toy scale: named experiments on the synthetic data.

``scripts/reproduce.py --experiment NAME`` runs one experiment of
``experiments.EXPERIMENTS`` (heads or methods x seeds) through the library's
own config, training loop and evaluation, then writes ``results.json``,
``results.md`` and plots. Modules:

* ``experiments``: the table of experiments, variants and the paper's numbers;
* ``run_config``: the pipeline config of one run (template + overrides);
* ``runner``: one run (dataset, training, evaluation, example masks), resumable;
* ``examples``: masks a trained model predicts for fixed unseen instances;
* ``summary``: means / std over seeds, ``results.json`` and ``results.md``;
* ``plots``: the PNG figures.
"""

"""Running the notebooks: the runner, run profiles, results folders and the sweeps a notebook cell calls."""

"""Many independent jobs, in joblib workers or in this process, with a progress bar."""

from __future__ import annotations


def map_in_order(function, arguments, *, n_jobs: int = 1, backend: str = "loky", desc: str, unit: str,
                 progress: bool = True, leave: bool = True) -> list:
    """``[function(*args) for args in arguments]``: in this process when ``n_jobs == 1``,
    else in joblib workers (``backend``), results in job order as they arrive; a tqdm bar on
    stderr counts them."""
    from tqdm.auto import tqdm

    arguments = list(arguments)
    if n_jobs == 1:
        outputs = (function(*args) for args in arguments)
    else:
        import joblib

        outputs = joblib.Parallel(n_jobs=n_jobs, backend=backend, return_as="generator")(
            joblib.delayed(function)(*args) for args in arguments)
    results = []
    with tqdm(total=len(arguments), desc=desc, unit=unit, disable=not progress, leave=leave) as bar:
        for result in outputs:
            results.append(result)
            bar.update()
    return results

"""The engine of a run: plan → compute → deliver (publish is `outdir`); `runner` orchestrates."""

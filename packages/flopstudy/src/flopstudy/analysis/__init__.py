"""What is derived from the results table for the report and the planner: the whole study's analysis computed once
(`study`), the efficiency front (`efficiency`), verdicts against scratch (`verdicts`), layer-wise transfer
(`layer_transfer`) and MAE pre-pretraining (`prepretrain`). Built on `flopstudy.results` and `flopstudy.fits`."""

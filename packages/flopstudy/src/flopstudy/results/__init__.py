"""The results table: its rows and columns (`rows`), reading and writing it (`files`, `loaded`), the rows of
fine-tuning result files (`finetune_outputs`) and upstream columns (`upstream_columns`), and the table grouped into
accuracy-vs-FLOPs curves (`curves`). Imports no other room of flopstudy."""

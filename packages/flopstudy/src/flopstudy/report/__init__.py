"""The report: written all-or-nothing into one folder (`writer`, `output_dir`), its figures (`figures`,
`figure3`), tables (`study_tables`, rendered by `table_markup`), plain-language summary (`summary`) and
self-contained HTML page (`html_page`)."""

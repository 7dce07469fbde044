"""What a sweep's runs and tasks are, below both the sweep and its stages: run and task identities with their stable
hashes (`runs`), the downstream task protocol (`task_protocol`), the parts of a sweep's settings (`settings`) and
the range checks they use (`ranges`)."""

"""The processes, on top of every layer: the worker, `notifications dev` and its embedded dev server,
the admin API's server, the CLI, logging setup and the retention schedule."""

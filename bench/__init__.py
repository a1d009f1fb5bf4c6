"""The benchmark, beside the runtime: `notifications bench` (registered as a command plug-in) runs
it against bare Temporal workflows. No runtime package imports it."""

"""One module a scenario of `notifications bench`, each on its own fresh dev server and database:

baseline     N bare workflows of one trivial activity, same worker settings
ours         N notifications through the Python client, outbox provider, per --latency-ms
resend       N emails through the Resend SDK against the local fake Resend API (fakes/resend.py)
concurrency  a 100 ms provider at low and high configured concurrency: concurrency-bound throughput
backlog      queues paused, --backlog notifications held, worker RSS at 10 % and 100 %, resume, drain
unloaded     a few notifications one at a time: enqueue-to-sent p50 vs the bare round trip p50
campaign     one email to --campaign-n recipients in batches (outbox, Resend fake, PostgreSQL), worker RSS,
             single sends during it, py-spy on the worker
"""

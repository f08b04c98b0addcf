"""fourcast's benchmark suite: a load generator pinned to its own core, driving a real server.

`python -m bench run --suite quick|full|smoke` starts the server (pinned to core 0), runs each
scenario in a separate load-generator process (pinned to core 1), and writes JSON, Markdown and PNG
charts under `bench/results/<timestamp>/` and `bench/results/latest.*`.
"""

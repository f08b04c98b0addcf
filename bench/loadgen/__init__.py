"""The load-generator process (`python -m bench loadgen`, entry in `main`): runs one scenario spec
(JSON on stdin), prints result rows (stdout); one module per scenario kind.

It runs pinned to its own core, apart from the server, and measures both sides over each window
(`window`): the server's CPU (utime+stime from /proc/<pid>/stat) and RSS, and its own CPU, so a
result the load generator could not keep up with is flagged `client_bound`.
"""

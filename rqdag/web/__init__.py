"""The web dashboard (the optional ``rqdag[web]`` extra): runs, a run's DAG live, tasks, workers.

Modules: ``app`` (the Starlette app, error pages, security headers), ``api``
(the JSON API), ``pages`` (HTML pages, signing in and out), ``sse`` (a run's
live updates), ``auth`` (token, session cookie, CSRF), ``actions`` (cancel,
resume, resolve through the CLI's code, into the audit stream), ``listing``
(runs paged by rank), ``run_view`` and ``task_view`` (the documents of a run
and a task), ``timeline`` (attempts and epochs from the event stream),
``workers`` (RQ's live workers), ``layout`` (the DAG drawing), ``formatting``
and ``state``. Templates and static files are package data: nothing is loaded
from the internet.

Nothing here is imported by ``rqdag`` itself: ``rqdag dashboard`` imports it
when it starts, so the core package works without the extra.
"""

"""Where the experiments of served pages run: threads in this process (the default, and always in
Jupyter and the CLI), or Dask workers: a ``LocalCluster`` of worker processes (``odeviz serve
--workers N``) or an existing cluster by address (``--scheduler tcp://HOST:PORT``, more machines).
"""
from __future__ import annotations

import logging

from .base import Experiment
from .proxy import proxy_class
from .remote import RemoteExperiment

log = logging.getLogger(__name__)

_placement: dict = {}  # client, cluster, slots_per_worker while workers are in use


def use_workers(workers: int | None = None, scheduler: str | None = None, *, slots_per_worker: int):
    """From now on, pages' experiments train in Dask workers: ``workers`` new local processes (one
    thread each), or the cluster whose scheduler is at ``scheduler``; at most ``slots_per_worker``
    train at once on each (the others take turns). Returns the Dask client."""
    from dask.distributed import Client, LocalCluster

    stop_workers()
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.WARNING)
        scheduler = cluster
    client = Client(scheduler)  # the default client: actors find theirs by it
    _placement.update(client=client, cluster=cluster, slots_per_worker=slots_per_worker)
    return client


def stop_workers() -> None:
    """Back to threads in this process (closing the local cluster, if one was started)."""
    client, cluster = _placement.pop("client", None), _placement.pop("cluster", None)
    _placement.clear()
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


def make_experiment(experiment_class: type[Experiment], **params):
    """A page's experiment, made at once (its models are built where it trains)."""
    client = _placement.get("client")
    if client is None or not experiment_class.runs_remotely:
        return experiment_class(build_later=True, **params)
    remote = proxy_class(RemoteExperiment, experiment_class)
    return remote(client, slots_per_worker=_placement["slots_per_worker"], **params)

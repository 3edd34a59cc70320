"""Scale-out training on ``tf.distribute``: several GPUs (Mirrored) or several machines (MultiWorker).

Nothing here is cluster code: TensorFlow's strategies do the work, configured the standard way
(``TF_CONFIG`` for workers). What this module adds is what the two-tower model needs on top:

* one strategy per process, chosen by name (``train.strategy`` / ``tfrecs-llm train --strategy``);
* the global batch (``train.batch_size``) split across replicas by Keras, the in-memory dataset
  sharded by data (``AutoShardPolicy.DATA``: every worker builds the same dataset, each takes
  its share of every global batch);
* in-batch negatives over the *global* batch (``tfrecs_llm.models.global_batch``), so N
  replicas train the same model as one process with the same batch size, not one with N times
  fewer negatives;
* chief-only writing: non-chief workers write checkpoints to a private temporary directory and
  skip the final save.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from typing import Any

import tensorflow as tf

from tfrecs_llm.config import DISTRIBUTION_STRATEGIES as STRATEGY_NAMES

TASK_TYPES = ("chief", "worker")

_TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
)


def parse_tf_config(raw: str | None) -> dict[str, Any]:
    """Checks a ``TF_CONFIG`` value for multi-worker training and returns it parsed.

    Expected: JSON with ``cluster`` (job name -> list of ``host:port``, jobs ``worker`` and
    optionally one ``chief``) and ``task`` (this process's ``type`` and ``index`` in the cluster).
    Every worker gets the same ``cluster`` and its own ``task``.
    """
    if not raw:
        raise ValueError(
            "strategy 'multi_worker' needs the TF_CONFIG environment variable on every worker, "
            f"e.g. TF_CONFIG='{_TF_CONFIG_EXAMPLE}' (same cluster everywhere, each worker its own "
            "task index)"
        )
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}); expected e.g. {_TF_CONFIG_EXAMPLE}") from None
    if not isinstance(tf_config, dict) or not isinstance(tf_config.get("cluster"), dict):
        raise ValueError(
            f"TF_CONFIG must be a JSON object with a 'cluster' object; expected e.g. {_TF_CONFIG_EXAMPLE}"
        )
    cluster = tf_config["cluster"]
    unknown = set(cluster) - set(TASK_TYPES)
    if unknown or "worker" not in cluster and "chief" not in cluster:
        raise ValueError(
            f"TF_CONFIG cluster has jobs {sorted(cluster)}; multi-worker training expects 'worker' "
            "(and optionally one 'chief'), e.g. " + _TF_CONFIG_EXAMPLE
        )
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses or not all(
            isinstance(a, str) and a.rpartition(":")[2].isdigit() for a in addresses
        ):
            raise ValueError(
                f"TF_CONFIG cluster['{job}'] must be a non-empty list of 'host:port' strings, got {addresses!r}"
            )
    if len(cluster.get("chief", [])) > 1:
        raise ValueError(f"TF_CONFIG cluster['chief'] must hold one address, got {cluster['chief']!r}")
    task = tf_config.get("task")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ValueError(
            f"TF_CONFIG task must name this process's job and index, one of {sorted(cluster)}, "
            f"e.g. {{\"type\": \"worker\", \"index\": 0}}; got {task!r}"
        )
    index = task.get("index", 0)
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise ValueError(
            f"TF_CONFIG task index must be an integer in [0, {len(cluster[task['type']])}) for job "
            f"'{task['type']}', got {index!r}"
        )
    return tf_config


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """The process's distribution strategy for ``name`` (one of ``STRATEGY_NAMES``).

    ``default``: the strategy of the enclosing ``strategy.scope()`` if there is one (bring your
    own), else none (one device; TensorFlow places ops on a GPU if there is one).
    ``mirrored``: every local GPU (the CPU if there is none), one replica each.
    ``multi_worker``: every worker of the ``TF_CONFIG`` cluster, its local GPUs (or CPU) each;
    gradients are all-reduced every step (ring collectives on CPU, NCCL on GPUs).

    ``mirrored`` and ``multi_worker`` are created once per process and shared by every caller
    asking by name (``multi_worker`` can only be set up before TensorFlow runs anything).
    """
    if name not in STRATEGY_NAMES:
        raise ValueError(f"strategy must be one of {STRATEGY_NAMES}, got {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    return _shared_strategy(name)


@functools.cache
def _shared_strategy(name: str) -> tf.distribute.Strategy:
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    parse_tf_config(os.environ.get("TF_CONFIG"))
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:
        raise RuntimeError(
            f"could not set up strategy 'multi_worker' ({error}). It must be created before "
            "TensorFlow runs anything in the process: call "
            "tfrecs_llm.training.distribute.make_strategy('multi_worker') first thing (the CLI does), and "
            "create the text encoder inside its scope()."
        ) from error


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints and the trained model (always, without a cluster)."""
    return bool(strategy.extended.should_checkpoint)


def checkpoint_write_dir(checkpoint_dir: str, strategy: tf.distribute.Strategy) -> str:
    """Where this worker writes checkpoints: ``checkpoint_dir`` on the chief, a private
    temporary directory elsewhere (every worker must take part in saving distributed
    variables, but only the chief's copy is kept; remove the temporary one after training)."""
    if is_chief(strategy):
        return checkpoint_dir
    return tempfile.mkdtemp(prefix="tfrecs_llm_worker_checkpoint_")


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Marks an in-memory dataset for sharding by element: each worker iterates the same
    pipeline and keeps its part of every global batch (file-based sharding cannot apply)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def check_created_in_scope(variables: list[tf.Variable], strategy: tf.distribute.Strategy, what: str) -> None:
    """Raises when ``variables`` were made outside ``strategy.scope()`` (they would not be
    mirrored, and replicas would drift apart or fail to update them)."""
    outside = [v.name for v in variables if not strategy.extended.variable_created_in_scope(v)]
    if outside:
        raise ValueError(
            f"{what} has {len(outside)} variables created outside the distribution strategy's "
            f"scope (e.g. {outside[0]!r}); create it inside `with strategy.scope():`, with the "
            "strategy from tfrecs_llm.training.distribute.make_strategy(config.train.strategy), or let "
            "Recommender.train load it from config.encoder"
        )


def check_workers_agree(facts: dict[str, int], strategy: tf.distribute.Strategy) -> None:
    """Raises on every worker unless all replicas hold the same ``facts`` (e.g. the epoch to
    resume from, the number of batches per epoch). Replicas that disagree would run different
    numbers of steps, and the collective ops of the longer ones would wait forever."""
    if strategy.num_replicas_in_sync == 1:
        return
    values = tf.constant([list(facts.values())], tf.float32)

    @tf.function
    def gather() -> tf.Tensor:
        return tf.distribute.get_replica_context().all_gather(values, axis=0)

    gathered = strategy.experimental_local_results(strategy.run(gather))[0].numpy()
    lowest, highest = gathered.min(axis=0), gathered.max(axis=0)
    differing = [
        f"{name} ranges from {low:.0f} to {high:.0f}"
        for name, low, high in zip(facts, lowest, highest)
        if low != high
    ]
    if differing:
        raise ValueError(
            "the workers disagree: " + "; ".join(differing) + ". Every worker must read the same "
            "items and interactions, and checkpoint_dir must be one directory every worker can "
            "read (shared storage such as NFS or gs://), where only the chief writes"
        )

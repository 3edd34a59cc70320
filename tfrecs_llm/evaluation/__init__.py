"""Offline evaluation: the held-out protocol, baselines, ``tfrecs_llm.evaluate``, its report and
charts, and the ranking head against retrieval order. Submodules are imported on use."""

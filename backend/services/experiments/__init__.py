"""Experiments: a base run config and axes expanded into ordinary runs (``grid``), launched,
cancelled and resumed together (``lifecycle``), cut by successive halving as their evaluations
arrive (``halving``) and judged on one page (``verdict``, ``comparability``, ``export``)."""

"""The Dask engine behind :mod:`wsreplay.dask`: partitions, the capture's window, and combining results.

* :mod:`.partitions`: which outposts and files make each partition, and reading one on a worker;
* :mod:`.window`: the window every partition is judged over;
* :mod:`.dispatch`: how each public analysis function runs over the partitions;
* :mod:`.combine`: concatenating and ordering the partial results.

Imported only when a Dask DataFrame reaches an analysis function (or
:func:`wsreplay.dask.load` is called): ``import wsreplay`` never imports Dask.
"""

__all__: list[str] = []

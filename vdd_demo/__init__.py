"""vdd_demo: the demo and its tooling beside the ``basicsr_vdd`` library.

``vdd_demo.synthetic`` (the synthetic GoPro-style data generator) and ``vdd_demo.images`` need
neither torch nor BasicSR; ``runner``, ``report`` and ``figures`` (the demo's train/test runs, its
result tables and comparison figures) import ``basicsr_vdd``. Importing this package imports nothing.
"""

"""Where a component's rows come from: one module per source type, named in `registry.py`.

Every source implements `base.Source`. A new source type is one new module here plus one line in
`registry.REGISTRY`; the spec parser, the design generator and the builder only talk to it through
that interface.
"""

"""Looking at results: figures (``plots``), run tables and workload summaries (``runs``),
statistics (``stats``), paired evaluations (``evaluation``), HTML reports (``report``) and the
cross-validation against real Batsim (``crossval``).
"""

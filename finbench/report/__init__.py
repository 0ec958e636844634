"""Report stage: statistics over items and the Markdown / CSV / PNG report."""

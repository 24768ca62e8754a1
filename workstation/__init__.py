"""Tools run on a workstation, above the chart code and never imported by it."""

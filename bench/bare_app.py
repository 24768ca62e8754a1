"""The baseline for bench/synth.py: a cdk8s app with one object and nothing else."""

import cdk8s

app = cdk8s.App()
chart = cdk8s.Chart(app, "bare")
cdk8s.ApiObject(chart, "config", api_version="v1", kind="ConfigMap")
app.synth()

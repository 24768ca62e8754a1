"""The chart: values mapped onto each construct's props and composed (`compose`), the passes over the
composed app (sync waves, policy annotations) and writing the output folder."""

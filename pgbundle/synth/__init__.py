"""Post-synth passes over the composed app and writing the output folder."""

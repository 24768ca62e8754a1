"""What the constructs use: the contract, the values model, config rendering, pod pieces, reading manifests back."""

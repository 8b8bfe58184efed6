"""Proto-value networks (Farebrother et al., ICLR 2023): indicator families and the TD rule."""

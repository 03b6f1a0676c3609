"""Data made in code or shipped in the package: toy clouds, 2-D densities, handwritten digits."""

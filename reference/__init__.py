"""Reference PyTorch kernels and models built from costmodel's ModelSpec, plus measurement.

torch and fvcore are imported only inside this package (extra `measure`).
"""

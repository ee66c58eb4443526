"""Comparators (kept for existing imports): the treatments live in :mod:`imiqsim.treatments`.

The vehicle is a product with no drug (:data:`imiqsim.treatments.products.PRODUCTS`);
cryotherapy is :mod:`imiqsim.treatments.cryotherapy`.
"""

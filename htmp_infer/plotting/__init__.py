"""Figures: one spectrum against its fit, and the figures of a scan.

This subpackage owns the matplotlib and ArviZ figures. Plots take DataTrees and
tables and never import the code that made them; no backend is chosen on import.
"""

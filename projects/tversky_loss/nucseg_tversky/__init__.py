"""Example external nucseg plugin: a registered Tversky loss."""
from .tversky_loss import MultiClassTverskyLoss

__all__ = ['MultiClassTverskyLoss']

from .overlay import draw_instances, instance_colors, make_comparison_panel

__all__ = ['draw_instances', 'instance_colors', 'make_comparison_panel']

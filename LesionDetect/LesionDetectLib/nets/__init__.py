"""Networks: the coronary-calcium SSD detector, its backbone and its loss."""

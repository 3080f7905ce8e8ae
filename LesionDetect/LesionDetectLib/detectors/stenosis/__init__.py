"""Coronary stenosis in X-ray angiography cines: burned-in text, vesselness, key frames."""

"""Running trained networks over whole videos: the VDD diffusion pipeline (training loss and sampling,
:mod:`.vdd_diffusion`), temporal windows and spatial tiles (:mod:`.video_windows`), every method over a
stream of frames (:mod:`.streaming`) and reading / writing the user's videos (:mod:`.inference`).

Nothing here is registered in BasicSR; :mod:`.vdd_diffusion` and :mod:`.video_windows` import nothing
from it.
"""

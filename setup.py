from setuptools import find_packages, setup

setup(
    name='basicsr_vdd',
    version='0.1.0',
    description='Video deblurring diffusion model (Deblurring via Video Diffusion Models) as a BasicSR plugin',
    packages=find_packages(include=['basicsr_vdd', 'basicsr_vdd.*', 'vdd_demo', 'vdd_demo.*']),
    python_requires='>=3.10',
    install_requires=['basicsr==1.4.2', 'torch>=2.4', 'diffusers>=0.42', 'einops', 'open_clip_torch', 'lpips',
                      'stlpips-pytorch', 'torchsummary', 'ipython',  # stlpips imports both, declares neither
                      'safetensors', 'av', 'opencv-python', 'scikit-image'],
)

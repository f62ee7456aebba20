"""Pictures and analyses of how tokens merge (paper Sec. 4.3-4.4, supp. Sec. 6.4 and 8).

layout.py     where each input token sits in the clip (frames, rows, columns) for every supported model
groups.py     sources -> group id per token and per pixel; merged groups
trace.py      run a patched model and read the sources after the last (or any) layer
render.py     groups drawn over the frames: mean colour or pixels, one border colour per group; PNG grid, GIF
picture.py    one clip with its merged tokens (after the last or any layer), written as PNG + GIF
clips.py      clips to look at: decoded videos at the model's input size, synthetic clips
duplicate.py  layer duplication (Fig. 7): Q merge-only copies of one layer
splice.py     clip splicing (Fig. 8): partner choice and the share of groups spanning both clips
confusion.py  confusion-matrix change between two prediction files (Fig. 4 / 10)
curves.py     accuracy and speedup against r (Fig. 3)
figure.py     writing a figure (every plot of vtome ends with it)
"""

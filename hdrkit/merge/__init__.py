"""Classical merging of aligned exposure brackets: radiance merges, exposure fusion, deghosting.

One function per algorithm; ``hdrkit.methods`` registers them (with the learned networks) under short
names with one calling convention. The default, ``'deghost'``, is ``merge_granados2013``.
"""

from hdrkit.merge.debevec1997 import merge_debevec1997
from hdrkit.merge.deghost import merge_deghost, merge_granados2013
from hdrkit.merge.mertens2007 import fuse_mertens2007
from hdrkit.merge.robertson2003 import merge_robertson2003
from hdrkit.merge.synthesis_kim2020 import synthesize_hdr_kim2020

__all__ = [
    "merge_debevec1997",
    "merge_robertson2003",
    "merge_granados2013",
    "merge_deghost",
    "fuse_mertens2007",
    "synthesize_hdr_kim2020",
]

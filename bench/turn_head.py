# Turns a NIfTI head in patient space by rewriting its sform (voxels untouched), for the
# defacing checks in docs/benchmarks.md: python3 bench/turn_head.py IN.nii[.gz] OUT.nii.gz pitch|yaw|roll DEGREES
import gzip,struct,math,sys
src,dst,axis,deg=sys.argv[1],sys.argv[2],sys.argv[3],float(sys.argv[4])
raw=gzip.open(src).read() if src.endswith('.gz') else open(src,'rb').read()
h=bytearray(raw)
sform_code=struct.unpack_from('<h',h,254)[0]
qform_code=struct.unpack_from('<h',h,252)[0]
if sform_code>0:
    S=[list(struct.unpack_from('<4f',h,280+16*r)) for r in range(3)]
else:
    # build from pixdim (assume axis-aligned)
    pd=struct.unpack_from('<8f',h,76)
    S=[[pd[1],0,0,0],[0,pd[2],0,0],[0,0,pd[3],0]]
a=math.radians(deg); c,s=math.cos(a),math.sin(a)
if axis=='pitch': R=[[1,0,0],[0,c,-s],[0,s,c]]   # about x (L-R)
elif axis=='yaw': R=[[c,-s,0],[s,c,0],[0,0,1]]   # about z
else: R=[[c,0,s],[0,1,0],[-s,0,c]]               # roll about y
N=[[sum(R[i][k]*S[k][j] for k in range(3)) for j in range(4)] for i in range(3)]
for r in range(3): struct.pack_into('<4f',h,280+16*r,*N[r])
struct.pack_into('<h',h,254,1); struct.pack_into('<h',h,252,0)
gzip.open(dst,'wb').write(bytes(h))

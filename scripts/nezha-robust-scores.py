#!/usr/bin/env python3
"""Scores every pod of a Nezha day by how far its metrics moved at each fault,
against its own recent history (BARO-style robust scores), and prints how
often the faulty service ranks first and in the top 3.

    scripts/nezha-robust-scores.py DAY [FAMILIES]

DAY is a Nezha day directory (metric/, *fault_list.json). FAMILIES is a
comma list of column name parts (Cpu, Memory, Syscall, Network, Latency,
Workload); all columns by default. For each fault at T: baseline = the
pod's samples from T-20m to T-2m, test = T to T+5m; a column's score is
max |x - median| / max(IQR, 10% of |median|); a pod's score its best
column's; a service's its best pod's.
"""
import csv,glob,json,sys,math,datetime,statistics as st
COLS=['CpuUsage(m)','MemoryUsage(Mi)','SyscallRead','SyscallWrite','NetworkReceiveBytes','NetworkTransmitBytes','PodClientLatencyP90(s)','PodServerLatencyP90(s)','PodClientLatencyP95(s)','PodServerLatencyP95(s)','PodClientLatencyP99(s)','PodServerLatencyP99(s)','PodWorkload(Ops)']
def svc(p): return '-'.join(p.split('-')[:-2])
def load(day):
    data={}
    for f in glob.glob(day+'/metric/*_metric.csv'):
        for r in csv.DictReader(open(f)):
            t=datetime.datetime.strptime(r['Time'][:16],'%Y-%m-%d %H:%M')
            p=r['PodName']
            d=data.setdefault(p,{})
            vals={}
            for c in COLS:
                try: v=float(r[c])
                except: v=float('nan')
                vals[c]=v
            d[t]=vals
    faults=[]
    fl=json.load(open(glob.glob(day+'/*fault_list.json')[0]))
    for h,v in fl.items():
        for f in v: faults.append((datetime.datetime.strptime(f['inject_time'][:16],'%Y-%m-%d %H:%M'),svc(f['inject_pod']),f['inject_type']))
    return data,sorted(faults)
def q(xs,p):
    xs=sorted(xs); k=(len(xs)-1)*p; f=math.floor(k); c=min(f+1,len(xs)-1); return xs[f]+(xs[c]-xs[f])*(k-f)
def score(data,T,cols):
    M=datetime.timedelta(minutes=1)
    out={}
    for p,d in data.items():
        best=0;bc=None
        for c in cols:
            base=[d[T-k*M][c] for k in range(2,21) if T-k*M in d and not math.isnan(d[T-k*M][c])]
            test=[d[T+k*M][c] for k in range(0,6) if T+k*M in d and not math.isnan(d[T+k*M][c])]
            if len(base)<5 or not test: continue
            med=st.median(base); iqr=q(base,.75)-q(base,.25)
            s=max(iqr,0.1*abs(med),1e-9)
            z=max(abs(x-med) for x in test)/s
            if z>best: best=z;bc=c
        out[p]=(best,bc)
    agg={}
    for p,(s,c) in out.items():
        k=svc(p)
        if s>agg.get(k,(-1,None))[0]: agg[k]=(s,c)
    return sorted(agg.items(),key=lambda kv:-kv[1][0])
day=sys.argv[1]; cols=COLS if len(sys.argv)<3 else [c for c in COLS if any(s in c for s in sys.argv[2].split(','))]
data,faults=load(day)
r1=r3=0;n=0;bytype={}
for T,s,ty in faults:
    rk=score(data,T,cols)
    names=[k for k,_ in rk]
    pos=names.index(s)+1 if s in names else 99
    n+=1; r1+=pos==1; r3+=pos<=3
    b=bytype.setdefault(ty,[0,0,0]); b[0]+=1;b[1]+=pos==1;b[2]+=pos<=3
    if '-v' in sys.argv: print(T,s,ty,pos,rk[:3])
print('n',n,'AS1 %.2f AS3 %.2f'%(r1/n,r3/n), {k:(v[0],round(v[1]/v[0],2),round(v[2]/v[0],2)) for k,v in bytype.items()})


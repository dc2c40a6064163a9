// The collaboration page: chat lines and whiteboard strokes of one group,
// live from the events stream. Strokes are records (payload: colour, width,
// points); erasing one deletes its record. Inline, small, no libraries; the
// script reaches the elements by their ids (c canvas, k colour, er erase,
// l chat log, f form, t text), as browsers expose them on window.

export const groupPage = (g: string): string => `<!doctype html><title>Canopy group</title><style>body{font:14px sans-serif;display:flex;gap:1em}canvas,#l{border:1px solid}#l{width:20em;height:25em;overflow:auto}</style>
<body data-strokes=0><div><canvas id=c width=640 height=400></canvas><br><input id=k type=color> <input id=er type=checkbox>erase</div>
<div><div id=l></div><form id=f><input id=t maxlength=500> <button>send</button></form></div><script>
let A='/api/groups/${g}/',S=new Map,C={},x=c.getContext('2d'),p,q=(u,method,b)=>fetch(A+u,{method,body:JSON.stringify(b)}),P=(type,payload)=>q('records','POST',{type,payload}),E=e=>[e.offsetX,e.offsetY],
R=(r,g)=>{g||=r.deleted;if(r.type=='stroke'){g?S.delete(r.id):S.set(r.id,JSON.parse(r.payload));c.width=640;for(const[,s]of S){x.strokeStyle=s.c;x.lineWidth=s.w;x.beginPath();for(let i=0;i<s.p.length;)x.lineTo(s.p[i++],s.p[i++]);x.stroke()}document.body.dataset.strokes=S.size}else r.type!='chat'||g||C[r.id]||(C[r.id]=l.append(r.author.slice(0,8)+': '+r.payload,document.createElement('br'))|(l.scrollTop=1e9))}
c.onpointerdown=e=>{let[a,b]=E(e);if(!er.checked)return p=[a,b];for(const[i,s]of S)for(let j=0;j<s.p.length;j+=2)if(Math.hypot(s.p[j]-a,s.p[j+1]-b)<6)return q('records/'+i,'DELETE')}
c.onpointermove=e=>{p&&p.length<999&&(p.push(...E(e)),x.lineTo(...E(e)),x.stroke())}
c.onpointerup=()=>{p?.length>2&&P('stroke',JSON.stringify({c:k.value,w:3,p}));p=0}
f.onsubmit=()=>{t.value&&P('chat',t.value);t.value='';return!1}
new EventSource(A+'events').addEventListener('record',m=>{m=JSON.parse(m.data);R(m.record,m.change=='removed')})
q('records').then(r=>r.json()).then(j=>j.records.map(r=>R(r)))
</script>`
